// Windows error codes -> the core's portable error set, in one place.
//
// Three sources meet here: WSAGetLastError() after a Winsock call, Win32
// codes (GetLastError(), which Winsock shares for overlapped results such as
// ERROR_NETNAME_DELETED), and the NTSTATUS that a completion carries in
// OVERLAPPED::Internal. Each becomes a SysError; the raw number kept for JS
// is the Win32/WSA code.
#ifndef ACCEPTPOOL_BACKENDS_WIN_WIN_ERRORS_H_
#define ACCEPTPOOL_BACKENDS_WIN_WIN_ERRORS_H_

#include <cstdint>

#include "core/status.h"

namespace acceptpool {

// A WSA or Win32 error code.
SysError SysErrorFromWin(uint32_t code);
// The Win32/WSA code an I/O NTSTATUS stands for (0 for success).
uint32_t WinErrorFromNtStatus(uint32_t ntstatus);

// A kSystem status for a WSA/Win32 `code` from `syscall`.
Status WinStatus(uint32_t code, const char* syscall);
// A kSystem status for the NTSTATUS of a completed operation.
Status NtStatus(uint32_t ntstatus, const char* syscall);

}  // namespace acceptpool

#endif  // ACCEPTPOOL_BACKENDS_WIN_WIN_ERRORS_H_
