// SPDX-License-Identifier: Apache-2.0
// Unit test of the guest image contract: guest_embed_src links into a host program and
// carries the image byte for byte, and the image has a valid Multiboot v1 header with the
// address fields (flag 16) in its first 8 KiB, as vmig's and QEMU's loaders expect.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char vmig_guest_image_start[], vmig_guest_image_end[];

#define MB_MAGIC       0x1BADB002u
#define MB_FLAG_MMAP   (1u << 1)
#define MB_FLAG_ADDRS  (1u << 16)
#define MB_SEARCH_SIZE 8192

struct mb_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
};

static int fail(const char *what)
{
	fprintf(stderr, "FAIL: %s\n", what);
	return 1;
}

static unsigned char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (!fseek(f, 0, SEEK_END) && (n = ftell(f)) >= 0 && !fseek(f, 0, SEEK_SET)) {
		buf = malloc((size_t)n + 1);
		if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return buf;
}

static const struct mb_header *find_header(const unsigned char *img, size_t len, size_t *off)
{
	static struct mb_header h;

	for (*off = 0; *off + sizeof(h) <= len && *off < MB_SEARCH_SIZE; *off += 4) {
		memcpy(&h, img + *off, sizeof(h));
		if (h.magic == MB_MAGIC && h.magic + h.flags + h.checksum == 0)
			return &h;
	}
	return NULL;
}

static int check_header(const unsigned char *img, size_t len)
{
	size_t off;
	const struct mb_header *h = find_header(img, len, &off);

	if (!h)
		return fail("no Multiboot header in the first 8 KiB");
	if (!(h->flags & MB_FLAG_ADDRS) || !(h->flags & MB_FLAG_MMAP))
		return fail("header lacks the address fields or the memory-map request");
	if (h->load_addr > h->header_addr || h->header_addr - h->load_addr > off)
		return fail("header_addr/load_addr inconsistent with the file");
	if (h->load_end_addr <= h->load_addr || h->bss_end_addr < h->load_end_addr)
		return fail("bad load_end/bss_end");
	if (off - (h->header_addr - h->load_addr) + (h->load_end_addr - h->load_addr) > len)
		return fail("the loadable part extends past the end of the file");
	if (h->entry_addr < h->load_addr || h->entry_addr >= h->load_end_addr)
		return fail("entry outside the loaded image");
	printf("multiboot header at file offset %zu: load 0x%x-0x%x bss_end 0x%x entry 0x%x\n", off,
	       h->load_addr, h->load_end_addr, h->bss_end_addr, h->entry_addr);
	return 0;
}

int main(int argc, char **argv)
{
	size_t embedded = (size_t)(vmig_guest_image_end - vmig_guest_image_start), len;
	unsigned char *img;
	int same;

	if (argc != 2)
		return fail("usage: test_guest_embed IMAGE");
	img = read_file(argv[1], &len);
	if (!img)
		return fail("cannot read the image file");
	same = len == embedded && !memcmp(img, vmig_guest_image_start, len);
	free(img);
	if (!same)
		return fail("the embedded image differs from the image file");
	printf("embedded image: %zu bytes, identical to %s\n", embedded, argv[1]);
	return check_header(vmig_guest_image_start, embedded);
}
