// SPDX-License-Identifier: Apache-2.0
// Parses the guest command line (docs/guest.md): space-separated key=value options, parsed
// strictly: an unknown key or a malformed value stops the guest with exit status 2.
#include "console.h"
#include "lib.h"
#include "user.h"

struct config cfg = {
    .nr_steps = 1,
    .steps = {STEP_IDLE},
    .secs = 1,
    .ws_bytes = 16 * MIB,
    .seed = 1,
    .irq_vector = VMIG_VEC_SDMA,
    .irq_count = 1,
    .ipis = 10,
    .exit_at_end = true,
    .jobs = 256,
    .job_size = 64 * KIB,
    .tlbi = true,
};

static const char *const step_names[] = {
    [STEP_IDLE] = "idle",	[STEP_DIRTY] = "dirty",	    [STEP_VERIFY] = "verify",
    [STEP_TOUCH] = "touch",	[STEP_IPI] = "ipi",	    [STEP_IRQWAIT] = "irqwait",
    [STEP_CORRUPT] = "corrupt", [STEP_DMA] = "dma",	    [STEP_REMAP] = "remap",
    [STEP_SVA] = "sva",		[STEP_HOSTILE] = "hostile",
};

void fail_cmdline(const char *what, const char *arg)
{
	struct line l = {.len = 0};

	line_str(&l, "ERROR cmdline: ");
	line_str(&l, what);
	if (arg) {
		line_str(&l, " '");
		line_str(&l, arg);
		line_str(&l, "'");
	}
	line_flush(&l);
	vm_exit(VMIG_GUEST_EXIT_CMDLINE);
}

static bool str_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int digit_value(char c, unsigned base)
{
	int v = -1;

	if (c >= '0' && c <= '9')
		v = c - '0';
	else if (c >= 'a' && c <= 'f')
		v = c - 'a' + 10;
	else if (c >= 'A' && c <= 'F')
		v = c - 'A' + 10;
	return v >= 0 && (unsigned)v < base ? v : -1;
}

static uint64_t suffix_shift(char c)
{
	switch (c) {
	case 'k':
	case 'K':
		return 10;
	case 'm':
	case 'M':
		return 20;
	case 'g':
	case 'G':
		return 30;
	default:
		return 64;
	}
}

/* Decimal or 0x-hex, optionally followed by K, M or G when `sized`; no overflow. */
static bool parse_u64(const char *s, bool sized, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0, shift;
	int d, n = 0;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	for (; (d = digit_value(*s, base)) >= 0; s++, n++) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
	}
	if (!n)
		return false;
	if (*s && sized && !s[1] && (shift = suffix_shift(*s)) < 64) {
		if (v > (UINT64_MAX >> shift))
			return false;
		v <<= shift, s++;
	}
	*out = v;
	return !*s;
}

static uint64_t value_u64(const char *key, const char *val, bool sized, uint64_t max)
{
	uint64_t v;

	if (!parse_u64(val, sized, &v) || v > max)
		fail_cmdline("bad value for option", key);
	return v;
}

static bool value_bool(const char *key, const char *val)
{
	return value_u64(key, val, false, 1) != 0;
}

static void parse_steps(char *list)
{
	cfg.nr_steps = 0;
	while (*list) {
		char *name = list;
		unsigned s;

		while (*list && *list != ',')
			list++;
		if (*list)
			*list++ = 0;
		for (s = 0; s < sizeof(step_names) / sizeof(step_names[0]); s++)
			if (str_eq(name, step_names[s]))
				break;
		if (s == sizeof(step_names) / sizeof(step_names[0]))
			fail_cmdline("unknown workload", name);
		if (cfg.nr_steps == MAX_STEPS)
			fail_cmdline("too many workload steps", 0);
		cfg.steps[cfg.nr_steps++] = (uint8_t)s;
	}
	if (!cfg.nr_steps)
		fail_cmdline("empty workload list", 0);
}

/* touch=BASE,COUNT,STRIDE */
static void parse_touch(char *val)
{
	char *part[3] = {val, 0, 0};
	uint64_t v[3];

	for (int i = 1; i < 3; i++) {
		char *c = part[i - 1];

		while (*c && *c != ',')
			c++;
		if (!*c)
			fail_cmdline("touch wants BASE,COUNT,STRIDE", 0);
		*c = 0;
		part[i] = c + 1;
	}
	for (int i = 0; i < 3; i++)
		if (!parse_u64(part[i], true, &v[i]))
			fail_cmdline("bad number in touch", part[i]);
	if (v[0] % PAGE_SIZE || v[2] % PAGE_SIZE || !v[2] || !v[1])
		fail_cmdline("touch wants a page-aligned BASE and STRIDE and COUNT > 0", 0);
	cfg.touch_base = v[0], cfg.touch_count = v[1], cfg.touch_stride = v[2];
}

static void parse_strtab(const char *val)
{
	if (str_eq(val, "linear"))
		cfg.strtab_2lvl = false;
	else if (str_eq(val, "2level"))
		cfg.strtab_2lvl = true;
	else
		fail_cmdline("strtab wants linear or 2level, got", val);
}

static void parse_option(char *key, char *val)
{
	if (str_eq(key, "workload"))
		parse_steps(val);
	else if (str_eq(key, "secs"))
		cfg.secs = value_u64(key, val, false, 1000000), cfg.secs_set = true;
	else if (str_eq(key, "iters"))
		cfg.iters = value_u64(key, val, false, UINT32_MAX);
	else if (str_eq(key, "ws"))
		cfg.ws_bytes = value_u64(key, val, true, 1ull << 40);
	else if (str_eq(key, "wsbase"))
		cfg.ws_base = value_u64(key, val, true, 1ull << 40);
	else if (str_eq(key, "rate"))
		cfg.rate = value_u64(key, val, false, 1ull << 32);
	else if (str_eq(key, "fillram"))
		cfg.fillram = value_bool(key, val);
	else if (str_eq(key, "seed"))
		cfg.seed = value_u64(key, val, false, UINT64_MAX);
	else if (str_eq(key, "cpus"))
		cfg.cpus = (uint32_t)value_u64(key, val, false, VMIG_MAX_VCPUS);
	else if (str_eq(key, "touch"))
		parse_touch(val);
	else if (str_eq(key, "irq"))
		cfg.irq_vector = (uint32_t)value_u64(key, val, false, 255);
	else if (str_eq(key, "irqcount"))
		cfg.irq_count = (uint32_t)value_u64(key, val, false, 1000000);
	else if (str_eq(key, "ipis"))
		cfg.ipis = (uint32_t)value_u64(key, val, false, 100000);
	else if (str_eq(key, "jobs"))
		cfg.jobs = value_u64(key, val, false, 1000000000);
	else if (str_eq(key, "jobsize"))
		cfg.job_size = value_u64(key, val, true, 64 * KIB);
	else if (str_eq(key, "tlbi"))
		cfg.tlbi = value_bool(key, val);
	else if (str_eq(key, "remapwritten"))
		cfg.remap_written = value_bool(key, val);
	else if (str_eq(key, "bypass"))
		cfg.bypass = value_bool(key, val);
	else if (str_eq(key, "stetoggle"))
		cfg.ste_toggle = value_bool(key, val);
	else if (str_eq(key, "stalldelay"))
		cfg.stall_delay_ms = (uint32_t)value_u64(key, val, false, 600000);
	else if (str_eq(key, "httucheck"))
		cfg.httu_check = value_bool(key, val);
	else if (str_eq(key, "httupace"))
		cfg.httu_pace_ms = (uint32_t)value_u64(key, val, false, 10000);
	else if (str_eq(key, "strtab"))
		parse_strtab(val);
	else if (str_eq(key, "exit"))
		cfg.exit_at_end = value_bool(key, val);
	else
		fail_cmdline("unknown option", key);
}

static void check_config(void)
{
	for (uint32_t i = 0; i < cfg.nr_steps; i++) {
		if (cfg.steps[i] == STEP_TOUCH && !cfg.touch_count)
			fail_cmdline("workload touch needs touch=BASE,COUNT,STRIDE", 0);
		if (cfg.steps[i] == STEP_TOUCH && i + 1 != cfg.nr_steps)
			fail_cmdline("touch must be the last workload step (the guest halts after)",
				     0);
	}
	if (cfg.ws_bytes < PAGE_SIZE || cfg.ws_bytes % PAGE_SIZE)
		fail_cmdline("ws must be a positive multiple of 4K", 0);
	if (cfg.ws_base % PAGE_SIZE)
		fail_cmdline("wsbase must be page-aligned", 0);
	if (cfg.irq_vector < 32 || cfg.irq_vector == VMIG_VEC_TIMER)
		fail_cmdline("irq must be a free vector >= 32", 0);
	if (!cfg.jobs || !cfg.job_size)
		fail_cmdline("jobs and jobsize must be positive", 0);
	if (!cfg.seed)
		cfg.seed = 1;
}

/*
 * A first word without '=' is the image name that Multiboot loaders (QEMU, GRUB) put in
 * front of the arguments; it is skipped. Every other word must be key=value.
 */
void cmdline_parse(void)
{
	static char buf[CMDLINE_MAX];
	char *p = buf;
	bool first = true;

	memcpy(buf, boot.cmdline, CMDLINE_MAX);
	while (*p) {
		char *word, *eq = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p)
			break;
		for (word = p; *p && *p != ' ' && *p != '\t'; p++)
			if (*p == '=' && !eq)
				eq = p;
		if (*p)
			*p++ = 0;
		if (!eq && first) {
			first = false;
			continue;
		}
		first = false;
		if (!eq)
			fail_cmdline("expected key=value, got", word);
		*eq = 0;
		parse_option(word, eq + 1);
	}
	check_config();
}
