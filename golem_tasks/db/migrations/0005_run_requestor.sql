-- One requestor identity per run: the yagna node id (GET /me) of its supervisor. Its
-- agreements, activities and payments exist only on that node, so only workers whose yagna
-- is that node may drive them (the run's jobs go to a queue named after it).
ALTER TABLE tasks.run ADD COLUMN requestor_id text;
