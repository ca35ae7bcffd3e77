-- Secrets every master of a deployment must share and keep across restarts,
-- such as the key that signs the links to stored outputs.

-- +goose Up
CREATE TABLE secrets (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    value      VARBINARY(1024) NOT NULL,
    created_at BIGINT NOT NULL
) ENGINE = InnoDB;

-- +goose Down
DROP TABLE secrets;
