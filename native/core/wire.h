// The wire format between native code and TypeScript: every enum, record
// layout and counter that crosses into JS is one X-macro list, next to the
// enum it defines, and nowhere else. The addon exports each list
// (native/addon/wire.cc, `binding.wire`); src/wire.ts reads the values from
// there, and test/05.wire.test.ts checks that both sides name the same
// entries.
//
//   list                        header         JS sees
//   ACCEPTPOOL_EVENT_TYPES      event_batch.h  EventType.Session, ...
//   ACCEPTPOOL_RECORD_FIELDS    event_batch.h  record.type, .id, .a, .b
//   ACCEPTPOOL_CLOSE_REASONS    event_batch.h  closeReasons[reason]: 'remote', ...
//   ACCEPTPOOL_STALE_COMMANDS   event_batch.h  staleCommands[a]: 'send', 'close'
//   ACCEPTPOOL_CONNECT_STEPS    event_batch.h  ConnectStep.Connect, .Bind
//   ACCEPTPOOL_ERROR_WORD       event_batch.h  errorWord.sys = [shift, bits], ...
//   ACCEPTPOOL_CODES            status.h       Code.Ok, Code.PoolFull, ...
//   ACCEPTPOOL_SYS_ERRORS       status.h       errorNames[sys]: 'ECONNRESET', ...
//   ACCEPTPOOL_SEND_RESULTS     engine.h       SendResult.Ok, ...
//   ACCEPTPOOL_CLOSE_MODES      engine.h       CloseMode.Graceful, ...
//   ACCEPTPOOL_STATS_FIELDS     stats.h        statsFields: 'poolSize', ...
//   ACCEPTPOOL_LOAD_MODES       load_generator.h  loadModes[mode]: 'connect-close', ...
//   ACCEPTPOOL_LOAD_PHASES      load_generator.h  loadPhases[phase]: 'ramp', ...
//
// Two shapes of list:
// - numbered, X(kName, value): JS uses the numbers as constants and gets an
//   object { Name: value } (the C++ name without its k);
// - named, X(kName, "text"): values 0, 1, ... in order, and JS, which shows
//   the text to users, gets the texts as an array indexed by value.
// Values are the wire format: never renumber an entry that JS may hold.
#ifndef ACCEPTPOOL_CORE_WIRE_H_
#define ACCEPTPOOL_CORE_WIRE_H_

// Enumerators from either shape of list.
#define ACCEPTPOOL_NUMBERED_ENUMERATOR(name, value) name = value,
#define ACCEPTPOOL_NAMED_ENUMERATOR(name, text) name,
// A list's length: (0 LIST(ACCEPTPOOL_COUNT_ENTRY)).
#define ACCEPTPOOL_COUNT_ENTRY(...) +1

#endif  // ACCEPTPOOL_CORE_WIRE_H_
