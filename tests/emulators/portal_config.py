"""Billing-portal configurations (`/v1/billing_portal/configurations`) and the checks Stripe runs
when a portal session is created (`configuration`, `flow_data`), for the fixture Stripe
(fake_stripe.py); local_hosted.py's portal page offers what the session's configuration enables.

What it follows (docs.stripe.com/api/customer_portal/configurations, /sessions/create):
  * `features` is required; each feature given needs its `enabled`; the object is Stripe's
    example configuration with the features set (defaults: `subscription_cancel[mode]`
    `at_period_end`, `[proration_behavior]` `none`; `subscription_update[proration_behavior]`
    `none`); "is_default: Whether the configuration is the default. If true, this configuration
    can be managed in the Dashboard and portal sessions will use this configuration unless it is
    overriden when creating the session": a configuration made through the API is not the
    default. `subscription_update[enabled]=true` needs `products` (the prices a customer can
    switch between) and `default_allowed_updates`.
  * a session names an active configuration (`configuration`); without one it uses the account's
    default configuration, and with none (a fresh test-mode account: the default exists only
    once the portal settings are saved in the Dashboard) Stripe answers 400. A test seeds a default
    by storing one with `POST /_test/objects` ({"id": "bpc_...", "object":
    "billing_portal.configuration", "is_default": true, "active": true, "features": {...}}) or by
    `POST /_test/portal/default` (the Dashboard's default settings).
  * `flow_data[type]` deep-links the session: its `flow` is set ({type, after_completion{type,
    redirect, hosted_confirmation}, subscription_cancel, subscription_update,
    subscription_update_confirm}); a flow needs its feature enabled in the configuration.
"""
import copy

EXAMPLE = {
    "id": None, "object": "billing_portal.configuration", "active": True, "application": None,
    "business_profile": {"headline": None, "privacy_policy_url": None, "terms_of_service_url": None},
    "created": 0, "default_return_url": None,
    "features": {
        "customer_update": {"allowed_updates": [], "enabled": False},
        "invoice_history": {"enabled": False},
        "payment_method_update": {"enabled": False, "payment_method_configuration": None},
        "subscription_cancel": {"cancellation_reason": {"enabled": False, "options": []}, "enabled": False,
                                "mode": "at_period_end", "proration_behavior": "none"},
        "subscription_update": {"billing_cycle_anchor": None, "default_allowed_updates": [], "enabled": False,
                                "products": [], "proration_behavior": "none",
                                "schedule_at_period_end": {"conditions": []},
                                "trial_update_behavior": "end_trial"},
    },
    "is_default": False, "livemode": False, "login_page": {"enabled": False, "url": None},
    "metadata": {}, "name": None, "updated": 0,
}
DASHBOARD_DEFAULT_FEATURES = {
    "customer_update": {"enabled": "true", "allowed_updates": {"0": "email", "1": "address"}},
    "invoice_history": {"enabled": "true"},
    "payment_method_update": {"enabled": "true"},
    "subscription_cancel": {"enabled": "true", "mode": "at_period_end"},
}
NO_DEFAULT = ("No configuration provided and your test mode default configuration has not been created. "
              "Provide a configuration or create your default by saving your customer portal settings in "
              "test mode at https://dashboard.stripe.com/test/settings/billing/portal.")


def _err(status, message, code=None, param=None):
    body = {"type": "invalid_request_error", "message": message}
    if code:
        body["code"] = code
    if param:
        body["param"] = param
    return status, {"error": body}


def _indexed(value) -> list:
    if isinstance(value, list):
        return value
    if not isinstance(value, dict):
        return []
    return [value[k] for k in sorted(value, key=lambda k: int(k) if k.isdigit() else 0)]


def _bool(value) -> bool:
    return value == "true" or value is True


def apply_features(obj: dict, given: dict, creating: bool):
    """Sets the configuration's features from the form's `features[...]`; an error or None."""
    features = obj["features"]
    for name in ("customer_update", "invoice_history", "payment_method_update", "subscription_cancel",
                 "subscription_update"):
        if name not in given:
            continue
        part = given[name] if isinstance(given[name], dict) else {}
        here = f"features[{name}]"
        if "enabled" not in part and creating:
            return _err(400, f"Missing required param: {here}[enabled].", "parameter_missing", f"{here}[enabled]")
        held = features[name]
        if "enabled" in part:
            held["enabled"] = _bool(part["enabled"])
        if name == "customer_update" and "allowed_updates" in part:
            held["allowed_updates"] = [v for v in _indexed(part["allowed_updates"]) if v]
        if name == "payment_method_update" and "payment_method_configuration" in part:
            held["payment_method_configuration"] = part["payment_method_configuration"] or None
        if name == "subscription_cancel":
            for key in ("mode", "proration_behavior"):
                if part.get(key):
                    held[key] = part[key]
            reason = part.get("cancellation_reason") if isinstance(part.get("cancellation_reason"), dict) else None
            if reason is not None:
                held["cancellation_reason"] = {"enabled": _bool(reason.get("enabled")),
                                               "options": [v for v in _indexed(reason.get("options")) if v]}
        if name == "subscription_update":
            if "default_allowed_updates" in part:
                held["default_allowed_updates"] = [v for v in _indexed(part["default_allowed_updates"]) if v]
            if "products" in part:
                held["products"] = [{"adjustable_quantity": {"enabled": False, "maximum": None, "minimum": 1},
                                     "prices": [p for p in _indexed(e.get("prices")) if p],
                                     "product": e.get("product")}
                                    for e in _indexed(part["products"])]
                for n, entry in enumerate(held["products"]):
                    if not entry["product"]:
                        return _err(400, f"Missing required param: {here}[products][{n}][product].",
                                    "parameter_missing", f"{here}[products][{n}][product]")
                    if not entry["prices"]:
                        return _err(400, f"Missing required param: {here}[products][{n}][prices].",
                                    "parameter_missing", f"{here}[products][{n}][prices]")
            for key in ("proration_behavior", "billing_cycle_anchor", "trial_update_behavior"):
                if part.get(key):
                    held[key] = part[key]
    update = features["subscription_update"]
    if update["enabled"] and not update["products"]:
        return _err(400, "You must specify at least one product in `features[subscription_update][products]` "
                         "when subscription updates are enabled.", None, "features[subscription_update][products]")
    if update["enabled"] and not update["default_allowed_updates"]:
        return _err(400, "You must specify `features[subscription_update][default_allowed_updates]` when "
                         "subscription updates are enabled.", None,
                    "features[subscription_update][default_allowed_updates]")
    return None


def create(params: dict, now: int, new_id, objects: dict):
    if "features" not in params or not isinstance(params.get("features"), dict):
        return _err(400, "Missing required param: features.", "parameter_missing", "features")
    obj = copy.deepcopy(EXAMPLE)
    obj.update(id=new_id("bpc"), created=now, updated=now)
    problem = apply_features(obj, params["features"], True) or apply_rest(obj, params)
    if problem:
        return problem
    objects[obj["id"]] = obj
    return 200, obj


def apply_rest(obj: dict, params: dict):
    profile = params.get("business_profile")
    if isinstance(profile, dict):
        for key in ("headline", "privacy_policy_url", "terms_of_service_url"):
            if key in profile:
                obj["business_profile"][key] = profile[key] or None
    if "default_return_url" in params:
        obj["default_return_url"] = params["default_return_url"] or None
    if "name" in params:
        obj["name"] = params["name"] or None
    if isinstance(params.get("login_page"), dict) and "enabled" in params["login_page"]:
        enabled = _bool(params["login_page"]["enabled"])
        obj["login_page"] = {"enabled": enabled,
                             "url": f"https://billing.stripe.test/p/login/{obj['id']}" if enabled else None}
    if isinstance(params.get("metadata"), dict):
        merged = {**(obj.get("metadata") or {}), **params["metadata"]}
        obj["metadata"] = {k: v for k, v in merged.items() if v != ""}
    return None


def update(cid: str, params: dict, now: int, objects: dict):
    obj = objects.get(cid)
    if obj is None or obj.get("object") != "billing_portal.configuration":
        return _err(404, f"No such configuration: '{cid}'", "resource_missing", "id")
    draft = copy.deepcopy(obj)
    if "active" in params:
        if obj.get("is_default") and not _bool(params["active"]):
            return _err(400, "The default configuration cannot be deactivated.", None, "active")
        draft["active"] = _bool(params["active"])
    if isinstance(params.get("features"), dict):
        problem = apply_features(draft, params["features"], False)
        if problem:
            return problem
    apply_rest(draft, params)
    draft["updated"] = now
    objects[cid] = draft
    return 200, draft


def default_configuration(objects: dict, now: int, new_id):
    """`POST /_test/portal/default`: the account's default configuration, as the Dashboard's
    portal settings save it."""
    for obj in objects.values():
        if obj.get("object") == "billing_portal.configuration" and obj.get("is_default"):
            return obj
    obj = copy.deepcopy(EXAMPLE)
    obj.update(id=new_id("bpc"), created=now, updated=now, is_default=True)
    apply_features(obj, DASHBOARD_DEFAULT_FEATURES, True)
    objects[obj["id"]] = obj
    return obj


def session_configuration(params: dict, objects: dict):
    """(configuration, None) for a session being created, or (None, error)."""
    cid = params.get("configuration")
    if cid:
        obj = objects.get(cid)
        if obj is None or obj.get("object") != "billing_portal.configuration":
            return None, _err(400, f"No such configuration: '{cid}'", "resource_missing", "configuration")
        if not obj.get("active", True):
            return None, _err(400, f"The configuration `{cid}` is not active. Activate it or use another "
                                   "configuration to create a portal session.", None, "configuration")
        return obj, None
    for obj in objects.values():
        if obj.get("object") == "billing_portal.configuration" and obj.get("is_default") and obj.get("active", True):
            return obj, None
    return None, _err(400, NO_DEFAULT, None, "configuration")


FLOW_FEATURES = {"payment_method_update": "payment_method_update", "subscription_cancel": "subscription_cancel",
                 "subscription_update": "subscription_update", "subscription_update_confirm": "subscription_update"}


def session_flow(params: dict, config: dict, objects: dict):
    """(flow | None, None) from `flow_data`, or (None, error)."""
    data = params.get("flow_data")
    if not isinstance(data, dict):
        return None, None
    kind = data.get("type")
    if not kind:
        return None, _err(400, "Missing required param: flow_data[type].", "parameter_missing", "flow_data[type]")
    feature = FLOW_FEATURES[kind]
    if not (config.get("features") or {}).get(feature, {}).get("enabled"):
        return None, _err(400, f"The `{kind}` flow requires `features[{feature}][enabled]` to be true on the "
                               f"configuration `{config['id']}`.", None, "flow_data[type]")
    after = data.get("after_completion") if isinstance(data.get("after_completion"), dict) else {}
    after_type = after.get("type") or "portal_homepage"
    redirect = after.get("redirect") if isinstance(after.get("redirect"), dict) else {}
    if after_type == "redirect" and not redirect.get("return_url"):
        return None, _err(400, "Missing required param: flow_data[after_completion][redirect][return_url].",
                          "parameter_missing", "flow_data[after_completion][redirect][return_url]")
    confirmation = after.get("hosted_confirmation") if isinstance(after.get("hosted_confirmation"), dict) else {}
    flow = {"after_completion": {
                "hosted_confirmation": ({"custom_message": confirmation.get("custom_message")}
                                        if after_type == "hosted_confirmation" else None),
                "redirect": {"return_url": redirect.get("return_url")} if after_type == "redirect" else None,
                "type": after_type},
            "subscription_cancel": None, "subscription_update": None, "subscription_update_confirm": None,
            "type": kind}
    if kind != "payment_method_update":
        part = data.get(kind) if isinstance(data.get(kind), dict) else {}
        sid = part.get("subscription")
        if not sid:
            return None, _err(400, f"Missing required param: flow_data[{kind}][subscription].", "parameter_missing",
                              f"flow_data[{kind}][subscription]")
        sub = objects.get(sid)
        if sub is None or sub.get("object") != "subscription":
            return None, _err(400, f"No such subscription: '{sid}'", "resource_missing",
                              f"flow_data[{kind}][subscription]")
        if sub.get("customer") != params.get("customer"):
            return None, _err(400, "The subscription does not belong to the session's customer.", None,
                              f"flow_data[{kind}][subscription]")
        flow[kind] = {"subscription": sid}
        if kind == "subscription_cancel":
            flow[kind]["retention"] = None
        if kind == "subscription_update_confirm":
            flow[kind].update(discounts=None, items=[{"id": i.get("id"), "price": i.get("price"),
                                                     "quantity": int(i["quantity"]) if i.get("quantity") else None}
                                                    for i in _indexed(part.get("items"))])
    return flow, None
