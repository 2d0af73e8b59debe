package keystore

import "github.com/blindrelay/blindrelay/pkg/account"

// Errors the stores return. They are *account.Error values, so they carry
// their code to the API without translation; compare them with errors.Is.
// A missing user is account.ErrUserNotFound.
var (
	// ErrDeviceNotFound: no such device, or (where a user is named) the
	// user has no access to it. The two are not told apart, so that nobody
	// learns which device ids exist.
	ErrDeviceNotFound = &account.Error{Code: account.CodeNotFound, Message: "Device not found."}
	// ErrDeviceExists: a device with this UID, WireGuard public key or
	// management address is already paired.
	ErrDeviceExists = &account.Error{Code: account.CodeDeviceExists, Message: "This device is already paired. Remove it first to pair it again."}
	// ErrSlotTaken: a key slot's index or browser public key is already in
	// use on the device (or given twice).
	ErrSlotTaken = &account.Error{Code: account.CodeConflict, Message: "A key slot with this index or key exists on the device."}
	// ErrAlreadyShared: the user already has access to the device.
	ErrAlreadyShared = &account.Error{Code: account.CodeConflict, Message: "The device is already shared with this user."}
	// ErrLastOwner: removing the user would leave the device without an
	// owner.
	ErrLastOwner = &account.Error{Code: account.CodeConflict, Message: "The only owner cannot leave a device; remove the device instead."}

	// ErrPairingTokenNotFound: the user has no pairing token with this id.
	ErrPairingTokenNotFound = &account.Error{Code: account.CodeNotFound, Message: "Pairing token not found."}
	// ErrTokenInvalid: no pairing token has this value.
	ErrTokenInvalid = &account.Error{Code: account.CodeTokenInvalid, Message: "This pairing token is not valid."}
	// ErrTokenExpired: the pairing token is past its lifetime.
	ErrTokenExpired = &account.Error{Code: account.CodeTokenExpired, Message: "This pairing token has expired. Please create a new one."}
	// ErrTokenUsedUp: every use of the pairing token is spent.
	ErrTokenUsedUp = &account.Error{Code: account.CodeTokenUsedUp, Message: "This pairing token has been used up. Please create a new one."}
	// ErrTokenRevoked: the pairing token's user revoked it.
	ErrTokenRevoked = &account.Error{Code: account.CodeTokenRevoked, Message: "This pairing token has been revoked."}
)
