-- Moves and restores become states of the tenant (model/records.py TRANSITIONS): a
-- move's second copy gets a column of its own instead of a key in the placement, and
-- the marks an older tenantvec kept in the placement become the state they meant.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS other_copy jsonb;

UPDATE tenants
   SET state = CASE placement -> 'move' ->> 'phase'
                   WHEN 'switched' THEN 'switched'
                   WHEN 'rolling-back' THEN 'rolling-back'
                   ELSE 'moving'
               END,
       other_copy = placement -> 'move' -> 'other',
       placement = placement - 'move'
 WHERE placement ? 'move' AND state IN ('ready', 'suspended');

UPDATE tenants
   SET state = 'restoring',
       placement = placement - 'restore'
 WHERE placement ? 'restore' AND state = 'provisioning';

UPDATE tenants
   SET placement = placement - 'restore'
 WHERE placement ? 'restore';
