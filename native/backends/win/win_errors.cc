#include "backends/win/win_errors.h"

#include <winsock2.h>
#include <windows.h>

namespace acceptpool {

namespace {

// NTSTATUS values a socket completion can carry. Spelled out here because
// <ntstatus.h> clashes with <windows.h> unless included with care, and only
// these few matter.
constexpr uint32_t kStatusSuccess = 0x00000000;
constexpr uint32_t kStatusPending = 0x00000103;
constexpr uint32_t kStatusBufferOverflow = 0x80000005;
constexpr uint32_t kStatusCancelled = 0xC0000120;
constexpr uint32_t kStatusLocalDisconnect = 0xC000013B;
constexpr uint32_t kStatusRemoteDisconnect = 0xC000013C;
constexpr uint32_t kStatusRemoteNotListening = 0xC000013E;
constexpr uint32_t kStatusInvalidConnection = 0xC0000140;
constexpr uint32_t kStatusInvalidAddress = 0xC0000141;
constexpr uint32_t kStatusConnectionReset = 0xC000020D;
constexpr uint32_t kStatusConnectionRefused = 0xC0000236;
constexpr uint32_t kStatusGracefulDisconnect = 0xC0000237;
constexpr uint32_t kStatusAddressAlreadyAssociated = 0xC0000238;
constexpr uint32_t kStatusConnectionInvalid = 0xC000023A;
constexpr uint32_t kStatusConnectionActive = 0xC000023B;
constexpr uint32_t kStatusNetworkUnreachable = 0xC000023C;
constexpr uint32_t kStatusHostUnreachable = 0xC000023D;
constexpr uint32_t kStatusProtocolUnreachable = 0xC000023E;
constexpr uint32_t kStatusPortUnreachable = 0xC000023F;
constexpr uint32_t kStatusRequestAborted = 0xC0000240;
constexpr uint32_t kStatusConnectionAborted = 0xC0000241;
constexpr uint32_t kStatusIoTimeout = 0xC00000B5;
constexpr uint32_t kStatusInsufficientResources = 0xC000009A;
constexpr uint32_t kStatusNoMemory = 0xC0000017;
constexpr uint32_t kStatusTooManyAddresses = 0xC0000209;
constexpr uint32_t kStatusAddressAlreadyExists = 0xC000020A;
constexpr uint32_t kStatusAccessDenied = 0xC0000022;
constexpr uint32_t kStatusInvalidParameter = 0xC000000D;
constexpr uint32_t kStatusInvalidHandle = 0xC0000008;
constexpr uint32_t kStatusPipeDisconnected = 0xC00000B0;
constexpr uint32_t kStatusPipeBroken = 0xC000014B;

}  // namespace

uint32_t WinErrorFromNtStatus(uint32_t ntstatus) {
  switch (ntstatus) {
    case kStatusSuccess: return 0;
    case kStatusPending: return WSA_IO_PENDING;
    case kStatusBufferOverflow: return WSAEMSGSIZE;
    case kStatusCancelled:
    case kStatusRequestAborted: return ERROR_OPERATION_ABORTED;
    case kStatusLocalDisconnect:
    case kStatusRemoteDisconnect: return ERROR_NETNAME_DELETED;
    case kStatusConnectionReset: return WSAECONNRESET;
    case kStatusConnectionAborted: return WSAECONNABORTED;
    case kStatusRemoteNotListening:
    case kStatusConnectionRefused:
    case kStatusPortUnreachable: return WSAECONNREFUSED;
    case kStatusGracefulDisconnect: return WSAEDISCON;
    case kStatusInvalidConnection:
    case kStatusConnectionInvalid: return WSAENOTCONN;
    case kStatusConnectionActive: return WSAEISCONN;
    case kStatusInvalidAddress: return WSAEADDRNOTAVAIL;
    case kStatusAddressAlreadyAssociated:
    case kStatusAddressAlreadyExists: return WSAEADDRINUSE;
    case kStatusNetworkUnreachable: return WSAENETUNREACH;
    case kStatusHostUnreachable: return WSAEHOSTUNREACH;
    case kStatusProtocolUnreachable: return WSAENETUNREACH;
    case kStatusIoTimeout: return WSAETIMEDOUT;
    case kStatusInsufficientResources:
    case kStatusTooManyAddresses: return WSAENOBUFS;
    case kStatusNoMemory: return ERROR_NOT_ENOUGH_MEMORY;
    case kStatusAccessDenied: return WSAEACCES;
    case kStatusInvalidParameter: return WSAEINVAL;
    case kStatusInvalidHandle: return WSAENOTSOCK;
    case kStatusPipeDisconnected:
    case kStatusPipeBroken: return WSAESHUTDOWN;
    default:
      // Win32 codes sometimes arrive here too (Wine, layered providers).
      return ntstatus < 0x10000 ? ntstatus : ERROR_MR_MID_NOT_FOUND;
  }
}

SysError SysErrorFromWin(uint32_t code) {
  switch (code) {
    case 0: return SysError::kNone;
    case WSAEWOULDBLOCK:
    case WSA_IO_PENDING:
    case WSA_IO_INCOMPLETE: return SysError::kAgain;
    // The connection went away under an operation: reset, as on Linux.
    case WSAECONNRESET:
    case WSAENETRESET:
    case WSAEDISCON:
    case ERROR_NETNAME_DELETED:
    case ERROR_BROKEN_PIPE: return SysError::kConnReset;
    case WSAECONNABORTED:
    case ERROR_CONNECTION_ABORTED:
    case ERROR_REQUEST_ABORTED: return SysError::kConnAborted;
    case WSAECONNREFUSED:
    case ERROR_CONNECTION_REFUSED:
    case ERROR_PORT_UNREACHABLE: return SysError::kConnRefused;
    case WSAETIMEDOUT:
    case ERROR_SEM_TIMEOUT:
    case ERROR_TIMEOUT: return SysError::kTimedOut;
    case WSAEADDRINUSE:
    case ERROR_ADDRESS_ALREADY_ASSOCIATED: return SysError::kAddrInUse;
    case WSAEADDRNOTAVAIL: return SysError::kAddrNotAvail;
    case WSAEACCES:
    case ERROR_ACCESS_DENIED: return SysError::kAccess;
    case WSAEMFILE:
    case ERROR_TOO_MANY_OPEN_FILES: return SysError::kMFile;
    case WSAENOBUFS:
    case ERROR_NO_SYSTEM_RESOURCES:
    case ERROR_INSUFFICIENT_BUFFER: return SysError::kNoBufs;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY: return SysError::kNoMem;
    case WSAEINVAL:
    case WSAEFAULT:
    case ERROR_INVALID_PARAMETER: return SysError::kInval;
    case WSAEAFNOSUPPORT:
    case WSAEPFNOSUPPORT: return SysError::kAfNoSupport;
    case WSAENETUNREACH:
    case WSAENETDOWN:
    case ERROR_NETWORK_UNREACHABLE: return SysError::kNetUnreach;
    case WSAEHOSTUNREACH:
    case ERROR_HOST_UNREACHABLE: return SysError::kHostUnreach;
    case WSAENOTCONN: return SysError::kNotConn;
    case WSAESHUTDOWN: return SysError::kShutdown;
    case ERROR_OPERATION_ABORTED: return SysError::kCanceled;
    case WSAENOTSOCK:
    case ERROR_INVALID_HANDLE: return SysError::kBadF;
    case WSAEPROTONOSUPPORT:
    case WSAEPROTOTYPE: return SysError::kProto;
    default: return SysError::kUnknown;
  }
}

Status WinStatus(uint32_t code, const char* syscall) {
  return Status::System(SysErrorFromWin(code), static_cast<int>(code), syscall);
}

Status NtStatus(uint32_t ntstatus, const char* syscall) {
  return WinStatus(WinErrorFromNtStatus(ntstatus), syscall);
}

}  // namespace acceptpool
