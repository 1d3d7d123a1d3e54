package mysqlstore

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestIsDeadlock(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&mysql.MySQLError{Number: 1213, SQLState: [5]byte{'4', '0', '0', '0', '1'}, Message: "Deadlock found when trying to get lock; try restarting transaction"}, true},
		{fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: 1213, Message: "Verklemmung"}), true},
		{errors.New("Deadlock found when trying to get lock; try restarting transaction"), true},
		{&mysql.MySQLError{Number: 1205, Message: "Lock wait timeout exceeded; try restarting transaction"}, false},
		{&mysql.MySQLError{Number: 1062, Message: "Duplicate entry '1213' for key 'PRIMARY'"}, false},
		{errors.New("driver: bad connection"), false},
	}
	for _, tt := range tests {
		if got := isDeadlock(tt.err); got != tt.want {
			t.Errorf("isDeadlock(%q) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
