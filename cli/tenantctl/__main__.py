"""``python -m tenantctl``: the same as the ``tenantctl`` script."""

from tenantctl.launch import run

run()
