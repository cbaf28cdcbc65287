-- Data shaped like TimeTracker's production (the seeds count 6 users, 3 teams and 14 tables):
-- 12 tables here, with the app's own `items` and Alembic's `alembic_version`, make 14. The
-- restore drill writes it, dumps it, ships the dump off the host and restores it from there.
-- Deterministic: the same rows on every run, so the counts before and after are comparable.
BEGIN;
CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE teams (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE team_members (team_id int NOT NULL REFERENCES teams, user_id int NOT NULL REFERENCES users, role text NOT NULL, PRIMARY KEY (team_id, user_id));
CREATE TABLE clients (id serial PRIMARY KEY, team_id int NOT NULL REFERENCES teams, name text NOT NULL);
CREATE TABLE projects (id serial PRIMARY KEY, client_id int NOT NULL REFERENCES clients, name text NOT NULL, hourly_rate numeric(8,2) NOT NULL);
CREATE TABLE tasks (id serial PRIMARY KEY, project_id int NOT NULL REFERENCES projects, title text NOT NULL, done boolean NOT NULL);
CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE time_entries (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users, task_id int NOT NULL REFERENCES tasks,
  started_at timestamptz NOT NULL, minutes int NOT NULL, note text NOT NULL);
CREATE TABLE time_entry_tags (entry_id int NOT NULL REFERENCES time_entries, tag_id int NOT NULL REFERENCES tags, PRIMARY KEY (entry_id, tag_id));
CREATE TABLE invoices (id serial PRIMARY KEY, client_id int NOT NULL REFERENCES clients, issued_on date NOT NULL, total numeric(10,2) NOT NULL);
CREATE TABLE refresh_tokens (id serial PRIMARY KEY, user_id int NOT NULL REFERENCES users, token_hash text NOT NULL, expires_at timestamptz NOT NULL);
CREATE TABLE audit_log (id bigserial PRIMARY KEY, user_id int REFERENCES users, action text NOT NULL, at timestamptz NOT NULL);

INSERT INTO users (email, name, created_at)
  SELECT format('user%s@example.com', n), format('User %s', n), timestamptz '2025-01-01' + n * interval '3 days' FROM generate_series(1, 6) n;
INSERT INTO teams (name) VALUES ('Platform'), ('Design'), ('Consulting');
INSERT INTO team_members SELECT 1 + (n % 3), n, CASE WHEN n <= 3 THEN 'owner' ELSE 'member' END FROM generate_series(1, 6) n;
INSERT INTO clients (team_id, name) SELECT 1 + (n % 3), format('Client %s', n) FROM generate_series(1, 5) n;
INSERT INTO projects (client_id, name, hourly_rate) SELECT 1 + (n % 5), format('Project %s', n), 80 + n * 5 FROM generate_series(1, 9) n;
INSERT INTO tasks (project_id, title, done) SELECT 1 + (n % 9), format('Task %s', n), n % 4 = 0 FROM generate_series(1, 60) n;
INSERT INTO tags (name) VALUES ('billable'), ('meeting'), ('review'), ('support'), ('travel');
INSERT INTO time_entries (user_id, task_id, started_at, minutes, note)
  SELECT 1 + (n % 6), 1 + (n % 60), timestamptz '2025-06-01' + n * interval '97 minutes', 15 + (n * 7) % 240, repeat(format('work item %s; ', n), 3)
  FROM generate_series(1, 4800) n;
INSERT INTO time_entry_tags SELECT n, 1 + (n % 5) FROM generate_series(1, 4800, 2) n;
INSERT INTO invoices (client_id, issued_on, total) SELECT 1 + (n % 5), date '2025-07-01' + n * 30, 1000 + n * 137.5 FROM generate_series(1, 12) n;
INSERT INTO refresh_tokens (user_id, token_hash, expires_at) SELECT 1 + (n % 6), md5(n::text), timestamptz '2026-12-01' FROM generate_series(1, 18) n;
INSERT INTO audit_log (user_id, action, at) SELECT 1 + (n % 6), format('action %s', n % 17), timestamptz '2025-06-01' + n * interval '11 minutes' FROM generate_series(1, 2500) n;
COMMIT;
