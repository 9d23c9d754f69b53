"""The Python interpreter of one document's session: its blocks run here, in order, in
one namespace, with top-level ``await`` (as in ``python -m asyncio`` or a notebook).

Run as ``python -m tests.docs.kernel IN_FD OUT_FD``: it reads one JSON request per line
from IN_FD -- ``{"name", "code", "env", "cwd"}`` -- runs the code with that environment
and working directory (the shell session's, so ``os.environ["KEY"]`` sees what a shell
block exported), and answers one JSON line on OUT_FD: ``{"ok": true}`` or ``{"ok":
false, "error": traceback}``. What the code prints goes to the kernel's stdout.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import sys
import traceback
from typing import Any


def serve(requests: Any, answers: Any) -> None:
    loop = asyncio.new_event_loop()
    namespace: dict[str, Any] = {"__name__": "__main__"}
    for line in requests:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        print(f"--- {request['name']}", flush=True)
        try:
            code = compile(
                request["code"], request["name"], "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            )
            result = eval(code, namespace)  # noqa: S307 - the document's own code
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
            answer: dict[str, Any] = {"ok": True}
        except BaseException:  # the block's failure is the answer, whatever it is
            answer = {"ok": False, "error": traceback.format_exc()}
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


if __name__ == "__main__":
    with (
        os.fdopen(int(sys.argv[1]), "r") as requests,
        os.fdopen(int(sys.argv[2]), "w") as answers,
    ):
        serve(requests, answers)
