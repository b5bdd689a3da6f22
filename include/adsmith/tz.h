/*
 * tz: IANA time zones, read from the system's compiled tz database
 * (/usr/share/zoneinfo, Debian package tzdata; TZif files, RFC 8536).
 *
 * adsmith never touches the process-wide TZ environment variable or
 * localtime(): campaigns in many zones are handled at once, from several
 * threads. A loaded zone is immutable and may be shared by threads.
 */
#ifndef ADSMITH_TZ_H
#define ADSMITH_TZ_H

#include <stdbool.h>
#include <stdint.h>

struct tz;

/**
 * Whether @p name is a well-formed zone name (1-64 bytes of A-Z a-z 0-9 _ + -
 * and /, no "." or empty part, so it cannot leave the database directory)
 * that the database holds.
 */
bool tz_exists(const char *name);

/**
 * Loads zone @p name ("UTC", "Europe/Berlin", ...).
 * @return 0 with *@p ret set (free with tz_free), ADS_ENOT_FOUND when the zone
 *   is unknown or malformed, ADS_EDATA_INVALID when its file is not TZif,
 *   or ADS_ENOMEM.
 */
int tz_load(const char *name, struct tz **ret);

void tz_free(struct tz *z);

/** The zone's offset from UTC, in seconds (east positive), at unix time @p t. */
int32_t tz_offset_at(const struct tz *z, int64_t t);

#endif
