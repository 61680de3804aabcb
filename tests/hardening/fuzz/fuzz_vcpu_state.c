// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target (-Dfuzz=true): the vCPU state blob of the snapshot/migration stream. */
#include <stddef.h>
#include <stdint.h>

#include "vmm/kvm/vcpu_state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vcpu_state st;

	if (vcpu_state_parse(data, size, &st) == 0)
		vcpu_state_free(&st);
	return 0;
}
