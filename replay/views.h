// JSON and text views of engine values (nlohmann::json), shared by the `qx` tools, the server and
// the Python package; they live here, below all three, so each view exists once.
//
// Money is rendered as a decimal string with the currency's places ("114000.0000" for CNY with 4
// decimals, Engine::money_decimals()) and prices both as
// integer ticks and as a decimal string (ticks x tick size), so nothing passes through a double.
// Field names follow QIFI (accounts, positions, orders, trades).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/engine.h"

namespace qx::replay {

std::string money_text(const core::Engine& engine, core::Money m);
std::string price_text(const core::Engine& engine, core::InstrumentId i, core::PriceTicks p);

nlohmann::json event_json(const core::Engine& engine, const core::Event& e);
nlohmann::json limits_json(const core::EngineLimits& l);
// An instrument's session schedule: {"utc_offset": "+HH:MM", "utc_offset_s", "entries":
// [{"start": "HH:MM:SS", "phase"}]}.
nlohmann::json session_json(const core::SessionSchedule& s);
// Seconds after midnight as HH:MM:SS.
std::string time_of_day_text(std::uint32_t seconds);
nlohmann::json effect_json(const core::Engine& engine, const core::Effect& e);
nlohmann::json account_json(const core::Engine& engine, core::AccountId a);
nlohmann::json positions_json(const core::Engine& engine, core::AccountId a);
nlohmann::json orders_json(const core::Engine& engine, core::AccountId a);
nlohmann::json trades_json(const core::Engine& engine, core::AccountId a);
nlohmann::json book_json(const core::Engine& engine, core::InstrumentId i, std::size_t depth);

// The name of an event's kind ("NewOrder", "Settle", ...).
const char* event_kind(const core::Event& e);

}  // namespace qx::replay
