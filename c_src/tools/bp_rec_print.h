/* bp_rec_print.h - one record of a flight recording as a line of text or
 * JSON, its payload decoded with ei (erl_interface). Used by the
 * command-line reader (beamprof_read.c). */
#ifndef BP_REC_PRINT_H
#define BP_REC_PRINT_H

#include <stddef.h>

#include "bp_rec_read.h"

/* Bytes of zeros the caller puts after a payload (see bp_rec_render): ei
 * reads fixed-size items before this code can check them against the
 * payload's end, so a malformed payload may make it read that far past. */
#define BP_REC_PAD (320u * 1024u)

/* Room for a kind (an atom: at most 255 characters of UTF-8). */
#define BP_REC_KIND_MAX (255 * 4 + 1)

enum bp_rec_format { BP_REC_TEXT, BP_REC_JSON };

/* A growing line buffer (malloc'd; `oom' once an allocation failed). */
struct bp_rec_line {
    char *p;
    size_t len, cap;
    int oom;
};

/* Renders the record of frame `f' into `line' (reset first) as one line
 * ending in '\n', and copies its kind into `kind' (NUL-terminated, at most
 * `kind_size' bytes). `payload' is a copy of f->payload followed by
 * BP_REC_PAD zero bytes. Returns 0, or -1 when the payload is not one whole
 * term that is a map with an atom `kind' (or nests deeper than 1000): the
 * frame is then skipped as undecodable. The text form is
 * `2026-12-05T01:02:03.456Z #SEQ KIND key=value ...' with values in Erlang
 * syntax; the JSON form is an object with "seq", "time" (ms), "mono_ns"
 * and the payload's entries (atoms as strings, true/false as booleans,
 * undefined as null, binaries as strings with invalid UTF-8 as U+FFFD,
 * tuples as arrays, pids and other terms as their Erlang text). */
int bp_rec_render(struct bp_rec_line *line, const struct bp_rec_frame *f, const char *payload,
                  enum bp_rec_format fmt, char *kind, size_t kind_size);

void bp_rec_line_free(struct bp_rec_line *line);

#endif
