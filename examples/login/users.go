package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// User is an account of the application.
type User struct {
	ID           int64
	Email, Name  string
	PasswordHash []byte // bcrypt
}

// Users keeps the accounts in a SQLite table, and implements
// auth.Users[*User].
type Users struct {
	db   *sql.DB
	cost int // bcrypt cost
}

// formError is a mistake in a form, shown to the user as is.
type formError string

func (e formError) Error() string { return string(e) }

const (
	errEmailTaken   = formError("an account with this email address exists already")
	errBadPassword  = formError("wrong email address or password")
	errWeakPassword = formError("the password must have at least 8 characters")
)

// openUsers creates the tables the application needs, idempotently.
func openUsers(ctx context.Context, db *sql.DB, cost int) (*Users, error) {
	_, err := db.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS users (
	id            INTEGER PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE,
	name          TEXT NOT NULL,
	password_hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS app_keys (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);`)
	if err != nil {
		return nil, fmt.Errorf("users: create tables: %w", err)
	}
	return &Users{db: db, cost: cost}, nil
}

// serverKey returns the application's server key for package auth,
// generated on first use and kept in the database, so that logins survive
// restarts.
func (u *Users) serverKey(ctx context.Context) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := u.db.ExecContext(ctx, `INSERT INTO app_keys (name, value) VALUES ('auth', ?) ON CONFLICT(name) DO NOTHING`, key); err != nil {
		return nil, fmt.Errorf("users: server key: %w", err)
	}
	if err := u.db.QueryRowContext(ctx, `SELECT value FROM app_keys WHERE name = 'auth'`).Scan(&key); err != nil {
		return nil, fmt.Errorf("users: server key: %w", err)
	}
	return key, nil
}

// SignUp creates an account.
func (u *Users) SignUp(ctx context.Context, email, name, password string) (*User, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	name = strings.TrimSpace(name)
	if email == "" || name == "" {
		return nil, formError("name and email address are required")
	}
	hash, err := u.hash(password)
	if err != nil {
		return nil, err
	}
	res, err := u.db.ExecContext(ctx, `INSERT INTO users (email, name, password_hash) VALUES (?, ?, ?) ON CONFLICT(email) DO NOTHING`, email, name, hash)
	if err != nil {
		return nil, fmt.Errorf("users: sign up: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, errEmailTaken
	}
	id, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("users: sign up: %w", err)
	}
	return &User{ID: id, Email: email, Name: name, PasswordHash: hash}, nil
}

func (u *Users) hash(password string) ([]byte, error) {
	if len(password) < 8 {
		return nil, errWeakPassword
	}
	if len(password) > 72 {
		return nil, formError("the password must have at most 72 bytes")
	}
	return bcrypt.GenerateFromPassword([]byte(password), u.cost)
}

// Authenticate returns the user with the email address and password.
func (u *Users) Authenticate(ctx context.Context, email, password string) (*User, error) {
	user, err := u.byEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return nil, err
	}
	hash := dummyHash
	if user != nil {
		hash = user.PasswordHash
	}
	// Compare even for an unknown address, so that timing does not tell.
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || user == nil {
		return nil, errBadPassword
	}
	return user, nil
}

// dummyHash is compared against when the email address is unknown.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a password of anyone"), bcrypt.MinCost)

// ChangePassword checks the current password and sets a new one; it
// returns the updated user.
func (u *Users) ChangePassword(ctx context.Context, user *User, current, next string) (*User, error) {
	if bcrypt.CompareHashAndPassword(user.PasswordHash, []byte(current)) != nil {
		return nil, formError("the current password is wrong")
	}
	hash, err := u.hash(next)
	if err != nil {
		return nil, err
	}
	if _, err := u.db.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, user.ID); err != nil {
		return nil, fmt.Errorf("users: change password: %w", err)
	}
	updated := *user
	updated.PasswordHash = hash
	return &updated, nil
}

func (u *Users) byEmail(ctx context.Context, email string) (*User, error) {
	return u.scan(u.db.QueryRowContext(ctx, `SELECT id, email, name, password_hash FROM users WHERE email = ?`, email))
}

func (u *Users) scan(row *sql.Row) (*User, error) {
	var user User
	switch err := row.Scan(&user.ID, &user.Email, &user.Name, &user.PasswordHash); {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("users: %w", err)
	}
	return &user, nil
}

// LoadUser implements auth.Users.
func (u *Users) LoadUser(ctx context.Context, id string) (*User, bool, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return nil, false, nil
	}
	user, err := u.scan(u.db.QueryRowContext(ctx, `SELECT id, email, name, password_hash FROM users WHERE id = ?`, n))
	return user, user != nil, err
}

// UserID implements auth.Users.
func (*Users) UserID(user *User) string { return strconv.FormatInt(user.ID, 10) }

// SessionSecret implements auth.Users: the password hash, which changes
// with the password.
func (*Users) SessionSecret(user *User) []byte { return user.PasswordHash }
