// Package protocol implements the sluice wire protocol: newline-delimited
// frames from the client, and cumulative acknowledgements ("OK <n>") and
// errors ("ERR <n> <CODE> <text>") from the server.
//
// The decoder splits frames out of one read buffer without copying them, so
// the hot path of the server allocates nothing per message. See PROTOCOL.md at
// the repository root for the full specification.
package protocol
