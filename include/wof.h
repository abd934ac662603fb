/* SPDX-License-Identifier: MIT */
/* wof: wipe-on-fork one-time initialisation. Include this; it includes the rest. */
#pragma once

#include <wof/generation.h>
#include <wof/once.h>
