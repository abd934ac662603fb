/* SPDX-License-Identifier: MIT */
/* wof: wipe-on-fork one-time initialisation. Include this; it includes the rest. */
#pragma once

#include <wof/generation.h>
#include <wof/lazy_cell.h>
#include <wof/lazy_lock.h>
#include <wof/lazy_static.h>
#include <wof/once.h>
#include <wof/once_cell.h>
#include <wof/once_lock.h>
#include <wof/secret.h>
