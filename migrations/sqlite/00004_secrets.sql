-- Secrets every master of a deployment must share and keep across restarts,
-- such as the key that signs the links to stored outputs.

-- +goose Up
CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE secrets;
