/* SPDX-License-Identifier: MIT */
/* Until the programs that include it move to tests/stress: the support library. */
#include "lib/wof-test.h"
