/* SPDX-License-Identifier: Apache-2.0 */
/* User-facing messages: one line each, prefixed "vmig: ", to stderr. Detail that is only
 * sometimes wanted is a trace point (common/trace.h), switched on by name at run time. */
#ifndef VMIG_COMMON_LOG_H
#define VMIG_COMMON_LOG_H

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
