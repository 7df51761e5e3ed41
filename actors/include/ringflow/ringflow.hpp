// ringflow/ringflow.hpp — everything an embedding application needs (the umbrella header).
#pragma once

#include "ringflow/actors/errors.hpp"
#include "ringflow/actors/fb_msg.hpp"
#include "ringflow/actors/graph.hpp"
#include "ringflow/actors/registry.hpp"
#include "ringflow/actors/ring_actor.hpp"
#include "ringflow/actors/ring_client.hpp"
#include "ringflow/actors/runtime.hpp"
#include "ringflow/actors/typed_client.hpp"
#include "ringflow/demo_kernels.hpp"
#include "ringflow/ingress.hpp"
#include "ringflow/messages.hpp"
