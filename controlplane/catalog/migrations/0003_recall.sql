-- A tenant's recall target, and the measured recall and search setting chosen to meet
-- it (controlplane/model/recall.py); {} reads as the default target, not measured.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS recall jsonb NOT NULL DEFAULT '{}'::jsonb;
