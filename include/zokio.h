/*
 * zokio.h - the whole public contract of Zokio, an async runtime for C.
 *
 * What is declared under include/zokio/ and pulled in here is the API;
 * nothing else is.
 */
#ifndef ZOKIO_H
#define ZOKIO_H

#include "zokio/channel.h"
#include "zokio/combine.h"
#include "zokio/common.h"
#include "zokio/fs.h"
#include "zokio/future.h"
#include "zokio/group.h"
#include "zokio/io.h"
#include "zokio/iter.h"
#include "zokio/metrics.h"
#include "zokio/net.h"
#include "zokio/process.h"
#include "zokio/runtime.h"
#include "zokio/scope.h"
#include "zokio/signal.h"
#include "zokio/sync.h"
#include "zokio/task.h"
#include "zokio/time.h"

#endif
