"""The parameters Stripe accepts on each endpoint this service calls, and the check the fixture
Stripe (fake_stripe.py) runs on every request before answering it, so a misspelled, renamed or
mistyped parameter fails a test here as it would fail in a real account.

What Stripe answers, and so what `check` answers (docs.stripe.com/error-codes,
docs.stripe.com/api/errors):
  * a name the endpoint does not have: 400 `invalid_request_error`, code `parameter_unknown`,
    `param` the full bracketed name, "Received unknown parameter: <name>";
  * a value that is not an integer where one is expected: code `parameter_invalid_integer`;
  * an empty value where a value is required (an integer, a boolean, an enum, an id):
    code `parameter_invalid_empty`;
  * a boolean that is neither `true` nor `false`, or a value outside an enum: 400
    `invalid_request_error` with `param` and no code (Stripe's list of codes has none for
    them; its message names the allowed values).

The lists follow Stripe's API reference for the pinned API version (2026-09-30.endive), each
endpoint cited by its reference page; they are the same lists async-stripe's request builders
(generated from Stripe's OpenAPI description of that version) carry, so they can be compared
field by field with `*Builder` structs in async-stripe's sources. Every top-level parameter of
an endpoint is listed. Children are listed in full for the hashes this service sends
(`metadata`, `line_items`, `subscription_data`, `recurring`, `created`, ...); a hash it never
sends is `ANY_HASH`: its name is checked, its children are not.
"""

STRING = "string"
INTEGER = "integer"
NUMBER = "number"
BOOLEAN = "boolean"
# A Stripe id or other value that must not be empty.
ID = "id"
# Free-form keys with string values (Stripe's `metadata`: up to 50 keys); an empty value
# unsets a key, so it is allowed.
METADATA = ("map",)
# A hash this service never sends: only its name is checked.
ANY_HASH = ("hash", None)


def enum(*values):
    return ("enum", frozenset(values))


def hash_of(**children):
    return ("hash", children)


def array_of(item):
    return ("array", item)


# `created` and other timestamp filters: an exact integer, or a hash of bounds.
RANGE = ("range",)
RANGE_BOUNDS = hash_of(gt=INTEGER, gte=INTEGER, lt=INTEGER, lte=INTEGER)

# Global parameters (docs.stripe.com/api/expanding_objects, docs.stripe.com/api/pagination).
EXPAND = {"expand": array_of(STRING)}
PAGING = {"limit": INTEGER, "starting_after": ID, "ending_before": ID}

CURRENCY = STRING
RECURRING_INTERVAL = enum("day", "month", "week", "year")
PAYMENT_METHOD_TYPES = enum(
    "acss_debit", "affirm", "afterpay_clearpay", "alipay", "alma", "amazon_pay", "au_becs_debit",
    "bacs_debit", "bancontact", "billie", "bizum", "blik", "boleto", "card", "cashapp", "crypto",
    "custom", "customer_balance", "eps", "fpx", "giropay", "grabpay", "ideal", "kakao_pay",
    "klarna", "konbini", "kr_card", "link", "mb_way", "mobilepay", "multibanco", "naver_pay",
    "nz_bank_account", "oxxo", "p24", "pay_by_bank", "payco", "paynow", "paypal", "paypay",
    "payto", "pix", "promptpay", "revolut_pay", "samsung_pay", "satispay", "scalapay",
    "sepa_debit", "sequra", "sofort", "sunbit", "swish", "twint", "upi", "us_bank_account",
    "wechat_pay", "zip")

# `trial_settings` (Checkout's `subscription_data`, subscriptions create and update).
TRIAL_SETTINGS = hash_of(end_behavior=hash_of(missing_payment_method=enum("cancel", "create_invoice", "pause")))
# `discounts[]` on subscriptions (create, update): a coupon, a promotion code or an existing discount.
SUBSCRIPTION_DISCOUNTS = array_of(hash_of(coupon=ID, discount=ID, promotion_code=ID))

# docs.stripe.com/api/checkout/sessions/create
CHECKOUT_SESSION_CREATE = dict(
    EXPAND,
    adaptive_pricing=ANY_HASH,
    after_expiration=ANY_HASH,
    allow_promotion_codes=BOOLEAN,
    allowed_payment_method_types=array_of(PAYMENT_METHOD_TYPES),
    automatic_tax=hash_of(enabled=BOOLEAN, liability=ANY_HASH),
    billing_address_collection=enum("auto", "required"),
    branding_settings=ANY_HASH,
    cancel_url=STRING,
    client_reference_id=STRING,
    consent_collection=ANY_HASH,
    currency=CURRENCY,
    custom_fields=array_of(ANY_HASH),
    custom_text=ANY_HASH,
    customer=ID,
    customer_account=ID,
    customer_creation=enum("always", "if_required"),
    customer_email=STRING,
    customer_update=hash_of(address=enum("auto", "never"), name=enum("auto", "never"),
                            shipping=enum("auto", "never")),
    discounts=array_of(hash_of(coupon=ID, promotion_code=ID)),
    excluded_payment_method_types=array_of(PAYMENT_METHOD_TYPES),
    expires_at=INTEGER,
    integration_identifier=STRING,
    invoice_creation=ANY_HASH,
    line_items=array_of(hash_of(
        adjustable_quantity=ANY_HASH,
        metadata=METADATA,
        price=ID,
        price_data=ANY_HASH,
        quantity=INTEGER,
        tax_rates=array_of(ID),
    )),
    locale=STRING,
    managed_payments=ANY_HASH,
    metadata=METADATA,
    mode=enum("payment", "setup", "subscription"),
    name_collection=ANY_HASH,
    optional_items=array_of(ANY_HASH),
    origin_context=enum("mobile_app", "web"),
    payment_intent_data=ANY_HASH,
    payment_method_collection=enum("always", "if_required"),
    payment_method_configuration=ID,
    payment_method_data=ANY_HASH,
    payment_method_options=ANY_HASH,
    permissions=ANY_HASH,
    phone_number_collection=ANY_HASH,
    redirect_on_completion=enum("always", "if_required", "never"),
    return_url=STRING,
    saved_payment_method_options=ANY_HASH,
    setup_intent_data=ANY_HASH,
    shipping_address_collection=ANY_HASH,
    shipping_options=array_of(ANY_HASH),
    submit_type=enum("auto", "book", "donate", "pay", "subscribe"),
    subscription_data=hash_of(
        application_fee_percent=NUMBER,
        billing_cycle_anchor=INTEGER,
        billing_cycle_anchor_config=ANY_HASH,
        billing_mode=ANY_HASH,
        default_tax_rates=array_of(ID),
        description=STRING,
        invoice_settings=ANY_HASH,
        metadata=METADATA,
        on_behalf_of=ID,
        pending_invoice_item_interval=ANY_HASH,
        proration_behavior=enum("create_prorations", "none"),
        transfer_data=ANY_HASH,
        trial_end=INTEGER,
        trial_period_days=INTEGER,
        trial_settings=TRIAL_SETTINGS,
    ),
    success_url=STRING,
    tax_id_collection=hash_of(enabled=BOOLEAN, required=enum("if_supported", "never")),
    ui_mode=enum("elements", "embedded_page", "form", "hosted_page"),
    wallet_options=ANY_HASH,
)

# docs.stripe.com/api/customers/create
CUSTOMER_CREATE = dict(
    EXPAND,
    address=hash_of(city=STRING, country=STRING, line1=STRING, line2=STRING, postal_code=STRING, state=STRING),
    balance=INTEGER,
    business_name=STRING,
    cash_balance=ANY_HASH,
    description=STRING,
    email=STRING,
    individual_name=STRING,
    invoice_prefix=STRING,
    invoice_settings=ANY_HASH,
    metadata=METADATA,
    name=STRING,
    next_invoice_sequence=INTEGER,
    payment_method=ID,
    phone=STRING,
    preferred_locales=array_of(STRING),
    shipping=ANY_HASH,
    source=ID,
    tax=ANY_HASH,
    tax_exempt=enum("exempt", "none", "reverse"),
    tax_id_data=array_of(hash_of(type=STRING, value=STRING)),
    test_clock=ID,
    validate=BOOLEAN,
)

# docs.stripe.com/api/customers/update
CUSTOMER_UPDATE = dict(
    EXPAND,
    address=hash_of(city=STRING, country=STRING, line1=STRING, line2=STRING, postal_code=STRING, state=STRING),
    balance=INTEGER,
    business_name=STRING,
    cash_balance=ANY_HASH,
    default_source=ID,
    description=STRING,
    email=STRING,
    individual_name=STRING,
    invoice_prefix=STRING,
    invoice_settings=hash_of(custom_fields=ANY_HASH, default_payment_method=STRING, footer=STRING,
                             rendering_options=ANY_HASH),
    metadata=METADATA,
    name=STRING,
    next_invoice_sequence=INTEGER,
    phone=STRING,
    preferred_locales=array_of(STRING),
    shipping=ANY_HASH,
    source=ID,
    tax=ANY_HASH,
    tax_exempt=enum("exempt", "none", "reverse"),
    validate=BOOLEAN,
)

# docs.stripe.com/api/customer_portal/sessions/create
PORTAL_SESSION_CREATE = dict(
    EXPAND,
    configuration=ID,
    customer=ID,
    customer_account=ID,
    flow_data=hash_of(
        after_completion=hash_of(
            hosted_confirmation=hash_of(custom_message=STRING),
            redirect=hash_of(return_url=STRING),
            type=enum("hosted_confirmation", "portal_homepage", "redirect"),
        ),
        subscription_cancel=hash_of(subscription=ID, retention=ANY_HASH),
        subscription_update=hash_of(subscription=ID),
        subscription_update_confirm=hash_of(
            subscription=ID, discounts=array_of(hash_of(coupon=ID, promotion_code=ID)),
            items=array_of(hash_of(id=ID, price=ID, quantity=INTEGER))),
        type=enum("payment_method_update", "subscription_cancel", "subscription_update",
                  "subscription_update_confirm"),
    ),
    locale=STRING,
    on_behalf_of=ID,
    return_url=STRING,
)

# docs.stripe.com/api/products/create
PRODUCT_CREATE = dict(
    EXPAND,
    active=BOOLEAN,
    default_price_data=ANY_HASH,
    description=STRING,
    id=ID,
    images=array_of(STRING),
    marketing_features=array_of(ANY_HASH),
    metadata=METADATA,
    name=STRING,
    package_dimensions=ANY_HASH,
    shippable=BOOLEAN,
    statement_descriptor=STRING,
    tax_code=ID,
    tax_details=ANY_HASH,
    type=enum("good", "service"),
    unit_label=STRING,
    url=STRING,
)

# docs.stripe.com/api/products/update
PRODUCT_UPDATE = dict(
    EXPAND,
    active=BOOLEAN,
    default_price=ID,
    description=STRING,
    images=array_of(STRING),
    marketing_features=array_of(ANY_HASH),
    metadata=METADATA,
    name=STRING,
    package_dimensions=ANY_HASH,
    shippable=BOOLEAN,
    statement_descriptor=STRING,
    tax_code=ID,
    tax_details=ANY_HASH,
    unit_label=STRING,
    url=STRING,
)

# docs.stripe.com/api/prices/create
PRICE_CREATE = dict(
    EXPAND,
    active=BOOLEAN,
    billing_scheme=enum("per_unit", "tiered"),
    currency=CURRENCY,
    currency_options=ANY_HASH,
    custom_unit_amount=ANY_HASH,
    lookup_key=STRING,
    metadata=METADATA,
    nickname=STRING,
    product=ID,
    product_data=ANY_HASH,
    recurring=hash_of(
        interval=RECURRING_INTERVAL,
        interval_count=INTEGER,
        meter=ID,
        trial_period_days=INTEGER,
        usage_type=enum("licensed", "metered"),
    ),
    tax_behavior=enum("exclusive", "inclusive", "unspecified"),
    tiers=array_of(ANY_HASH),
    tiers_mode=enum("graduated", "volume"),
    transfer_lookup_key=BOOLEAN,
    transform_quantity=ANY_HASH,
    unit_amount=INTEGER,
    unit_amount_decimal=STRING,
)

# docs.stripe.com/api/prices/update
PRICE_UPDATE = dict(
    EXPAND,
    active=BOOLEAN,
    currency_options=ANY_HASH,
    lookup_key=STRING,
    metadata=METADATA,
    nickname=STRING,
    tax_behavior=enum("exclusive", "inclusive", "unspecified"),
    transfer_lookup_key=BOOLEAN,
)

PAYMENT_BEHAVIOR = enum("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
PRORATION_BEHAVIOR = enum("always_invoice", "create_prorations", "none")

# One entry of `items[]` on subscription create (docs.stripe.com/api/subscriptions/create).
SUBSCRIPTION_CREATE_ITEM = hash_of(
    billing_thresholds=ANY_HASH,
    current_trial=ANY_HASH,
    discounts=array_of(ANY_HASH),
    metadata=METADATA,
    plan=ID,
    price=ID,
    price_data=ANY_HASH,
    quantity=INTEGER,
    tax_rates=array_of(ID),
)
# One entry of `items[]` on subscription update, and of `subscription_details[items][]` on
# the invoice preview (docs.stripe.com/api/subscriptions/update, /api/invoices/create_preview).
SUBSCRIPTION_UPDATE_ITEM = hash_of(
    billing_thresholds=ANY_HASH,
    clear_usage=BOOLEAN,
    current_trial=ANY_HASH,
    deleted=BOOLEAN,
    discounts=array_of(ANY_HASH),
    id=ID,
    metadata=METADATA,
    plan=ID,
    price=ID,
    price_data=ANY_HASH,
    quantity=INTEGER,
    tax_rates=array_of(ID),
)

# docs.stripe.com/api/subscriptions/create
SUBSCRIPTION_CREATE = dict(
    EXPAND,
    add_invoice_items=array_of(ANY_HASH),
    application_fee_percent=NUMBER,
    automatic_tax=hash_of(enabled=BOOLEAN, liability=ANY_HASH),
    backdate_start_date=INTEGER,
    billing_cycle_anchor=INTEGER,
    billing_cycle_anchor_config=ANY_HASH,
    billing_mode=ANY_HASH,
    billing_schedules=array_of(ANY_HASH),
    billing_thresholds=ANY_HASH,
    cancel_at=STRING,
    cancel_at_period_end=BOOLEAN,
    collection_method=enum("charge_automatically", "send_invoice"),
    currency=CURRENCY,
    customer=ID,
    customer_account=ID,
    days_until_due=INTEGER,
    default_payment_method=ID,
    default_source=ID,
    default_tax_rates=array_of(ID),
    description=STRING,
    discounts=SUBSCRIPTION_DISCOUNTS,
    invoice_settings=ANY_HASH,
    items=array_of(SUBSCRIPTION_CREATE_ITEM),
    metadata=METADATA,
    off_session=BOOLEAN,
    on_behalf_of=ID,
    payment_behavior=PAYMENT_BEHAVIOR,
    payment_settings=ANY_HASH,
    pending_invoice_item_interval=ANY_HASH,
    proration_behavior=enum("always_invoice", "create_prorations", "none"),
    transfer_data=ANY_HASH,
    trial_end=STRING,
    trial_from_plan=BOOLEAN,
    trial_period_days=INTEGER,
    trial_settings=TRIAL_SETTINGS,
)

# docs.stripe.com/api/subscriptions/update
SUBSCRIPTION_UPDATE = dict(
    EXPAND,
    add_invoice_items=array_of(ANY_HASH),
    application_fee_percent=NUMBER,
    automatic_tax=hash_of(enabled=BOOLEAN, liability=ANY_HASH),
    billing_cycle_anchor=enum("now", "unchanged"),
    billing_schedules=array_of(ANY_HASH),
    billing_thresholds=ANY_HASH,
    cancel_at=STRING,
    cancel_at_period_end=BOOLEAN,
    cancellation_details=hash_of(comment=STRING, feedback=STRING),
    collection_method=enum("charge_automatically", "send_invoice"),
    days_until_due=INTEGER,
    default_payment_method=ID,
    default_source=ID,
    default_tax_rates=array_of(ID),
    description=STRING,
    discounts=SUBSCRIPTION_DISCOUNTS,
    invoice_settings=ANY_HASH,
    items=array_of(SUBSCRIPTION_UPDATE_ITEM),
    metadata=METADATA,
    off_session=BOOLEAN,
    on_behalf_of=ID,
    pause_collection=ANY_HASH,
    payment_behavior=PAYMENT_BEHAVIOR,
    payment_settings=ANY_HASH,
    pending_invoice_item_interval=ANY_HASH,
    proration_behavior=PRORATION_BEHAVIOR,
    proration_date=INTEGER,
    transfer_data=ANY_HASH,
    trial_end=STRING,
    trial_from_plan=BOOLEAN,
    trial_settings=TRIAL_SETTINGS,
)

# docs.stripe.com/api/invoices/create_preview
INVOICE_CREATE_PREVIEW = dict(
    EXPAND,
    automatic_tax=hash_of(enabled=BOOLEAN, liability=ANY_HASH),
    currency=CURRENCY,
    customer=ID,
    customer_account=ID,
    customer_details=ANY_HASH,
    discounts=array_of(ANY_HASH),
    invoice_items=array_of(ANY_HASH),
    issuer=ANY_HASH,
    on_behalf_of=ID,
    preview_mode=enum("next", "recurring"),
    schedule=ID,
    schedule_details=ANY_HASH,
    subscription=ID,
    subscription_details=hash_of(
        billing_cycle_anchor=STRING,
        billing_mode=ANY_HASH,
        billing_schedules=array_of(ANY_HASH),
        cancel_at=STRING,
        cancel_at_period_end=BOOLEAN,
        cancel_now=BOOLEAN,
        default_tax_rates=array_of(ID),
        items=array_of(SUBSCRIPTION_UPDATE_ITEM),
        metadata=METADATA,
        pause=ANY_HASH,
        proration_behavior=PRORATION_BEHAVIOR,
        proration_date=INTEGER,
        resume_at=enum("now"),
        start_date=INTEGER,
        trial_end=STRING,
    ),
)

# docs.stripe.com/api/subscription_items/create, /update, /delete
SUBSCRIPTION_ITEM_COMMON = dict(
    billing_thresholds=ANY_HASH,
    current_trial=ANY_HASH,
    discounts=array_of(ANY_HASH),
    metadata=METADATA,
    payment_behavior=PAYMENT_BEHAVIOR,
    plan=ID,
    price=ID,
    price_data=ANY_HASH,
    proration_behavior=PRORATION_BEHAVIOR,
    proration_date=INTEGER,
    quantity=INTEGER,
    tax_rates=array_of(ID),
)
SUBSCRIPTION_ITEM_CREATE = dict(EXPAND, subscription=ID, **SUBSCRIPTION_ITEM_COMMON)
SUBSCRIPTION_ITEM_UPDATE = dict(EXPAND, off_session=BOOLEAN, **SUBSCRIPTION_ITEM_COMMON)
SUBSCRIPTION_ITEM_DELETE = dict(clear_usage=BOOLEAN, payment_behavior=PAYMENT_BEHAVIOR,
                                proration_behavior=PRORATION_BEHAVIOR, proration_date=INTEGER)

# docs.stripe.com/api/subscription_schedules/create, /update: one phase (`phases[]`) and its
# items. API 2026-09-30: a phase lasts `duration` ({interval, interval_count}) or until `end_date`
# (`iterations` is gone).
SCHEDULE_PHASE_ITEM = hash_of(
    billing_thresholds=ANY_HASH,
    discounts=array_of(ANY_HASH),
    metadata=METADATA,
    plan=ID,
    price=ID,
    price_data=ANY_HASH,
    quantity=INTEGER,
    tax_rates=array_of(ID),
    trial=ANY_HASH,
)
SCHEDULE_PHASE = hash_of(
    add_invoice_items=array_of(ANY_HASH),
    application_fee_percent=NUMBER,
    automatic_tax=hash_of(enabled=BOOLEAN, liability=ANY_HASH),
    billing_cycle_anchor=enum("automatic", "phase_start"),
    billing_thresholds=ANY_HASH,
    collection_method=enum("charge_automatically", "send_invoice"),
    currency=CURRENCY,
    default_payment_method=ID,
    default_tax_rates=array_of(ID),
    description=STRING,
    discounts=array_of(ANY_HASH),
    duration=hash_of(interval=RECURRING_INTERVAL, interval_count=INTEGER),
    end_date=STRING,
    invoice_settings=ANY_HASH,
    items=array_of(SCHEDULE_PHASE_ITEM),
    metadata=METADATA,
    on_behalf_of=ID,
    proration_behavior=PRORATION_BEHAVIOR,
    start_date=STRING,
    transfer_data=ANY_HASH,
    trial=BOOLEAN,
    trial_continuation=enum("continue", "none"),
    trial_end=STRING,
    trial_settings=ANY_HASH,
)
SCHEDULE_END_BEHAVIOR = enum("cancel", "none", "release", "renew")
SCHEDULE_CREATE = dict(
    EXPAND,
    billing_mode=ANY_HASH,
    customer=ID,
    customer_account=ID,
    default_settings=ANY_HASH,
    end_behavior=SCHEDULE_END_BEHAVIOR,
    from_subscription=ID,
    metadata=METADATA,
    phases=array_of(SCHEDULE_PHASE),
    start_date=STRING,
)
SCHEDULE_UPDATE = dict(
    EXPAND,
    default_settings=ANY_HASH,
    end_behavior=SCHEDULE_END_BEHAVIOR,
    metadata=METADATA,
    phases=array_of(SCHEDULE_PHASE),
    proration_behavior=PRORATION_BEHAVIOR,
)

# docs.stripe.com/api/customer_portal/configurations/create, /update
PORTAL_FEATURES = hash_of(
    customer_update=hash_of(
        allowed_updates=array_of(enum("address", "email", "name", "phone", "shipping", "tax_id")),
        enabled=BOOLEAN),
    invoice_history=hash_of(enabled=BOOLEAN),
    payment_method_update=hash_of(enabled=BOOLEAN, payment_method_configuration=ID),
    subscription_cancel=hash_of(
        cancellation_reason=hash_of(enabled=BOOLEAN, options=array_of(enum(
            "customer_service", "low_quality", "missing_features", "other", "switched_service",
            "too_complex", "too_expensive", "unused"))),
        enabled=BOOLEAN,
        mode=enum("at_period_end", "immediately"),
        proration_behavior=PRORATION_BEHAVIOR),
    subscription_update=hash_of(
        billing_cycle_anchor=enum("now", "unchanged"),
        default_allowed_updates=array_of(enum("price", "promotion_code", "quantity")),
        enabled=BOOLEAN,
        products=array_of(hash_of(adjustable_quantity=ANY_HASH, prices=array_of(ID), product=ID)),
        proration_behavior=PRORATION_BEHAVIOR,
        schedule_at_period_end=ANY_HASH,
        trial_update_behavior=enum("continue_trial", "end_trial")),
)
PORTAL_CONFIGURATION_CREATE = dict(
    EXPAND,
    business_profile=hash_of(headline=STRING, privacy_policy_url=STRING, terms_of_service_url=STRING),
    default_return_url=STRING,
    features=PORTAL_FEATURES,
    login_page=hash_of(enabled=BOOLEAN),
    metadata=METADATA,
    name=STRING,
)
PORTAL_CONFIGURATION_UPDATE = dict(PORTAL_CONFIGURATION_CREATE, active=BOOLEAN)

# (method, path pattern, parameters). `{id}` is one path segment. Only these requests are
# served: any other gets Stripe's 404 "Unrecognized request URL".
ENDPOINTS = [
    # docs.stripe.com/api/accounts/retrieve (the account of the key; no parameters)
    ("GET", "/v1/account", dict(EXPAND)),
    # docs.stripe.com/api/subscriptions/retrieve
    ("GET", "/v1/subscriptions/{id}", dict(EXPAND)),
    # docs.stripe.com/api/subscriptions/list
    ("GET", "/v1/subscriptions", dict(
        EXPAND, **PAGING,
        automatic_tax=hash_of(enabled=BOOLEAN),
        collection_method=enum("charge_automatically", "send_invoice"),
        created=RANGE, current_period_end=RANGE, current_period_start=RANGE,
        customer=ID, customer_account=ID, plan=ID, price=ID,
        status=enum("active", "all", "canceled", "ended", "incomplete", "incomplete_expired",
                    "past_due", "paused", "trialing", "unpaid"),
        test_clock=ID,
    )),
    # docs.stripe.com/api/subscriptions/create, /update, /cancel
    ("POST", "/v1/subscriptions", SUBSCRIPTION_CREATE),
    ("POST", "/v1/subscriptions/{id}", SUBSCRIPTION_UPDATE),
    ("DELETE", "/v1/subscriptions/{id}", dict(
        EXPAND, cancellation_details=hash_of(comment=STRING, feedback=STRING),
        invoice_now=BOOLEAN, prorate=BOOLEAN)),
    # docs.stripe.com/api/subscription_items (list, retrieve, create, update, delete)
    ("GET", "/v1/subscription_items", dict(EXPAND, **PAGING, subscription=ID)),
    ("GET", "/v1/subscription_items/{id}", dict(EXPAND)),
    ("POST", "/v1/subscription_items", SUBSCRIPTION_ITEM_CREATE),
    ("POST", "/v1/subscription_items/{id}", SUBSCRIPTION_ITEM_UPDATE),
    ("DELETE", "/v1/subscription_items/{id}", SUBSCRIPTION_ITEM_DELETE),
    # docs.stripe.com/api/invoices/create_preview (listed before `/v1/invoices/{id}`)
    ("POST", "/v1/invoices/create_preview", INVOICE_CREATE_PREVIEW),
    # docs.stripe.com/api/invoices/pay
    ("POST", "/v1/invoices/{id}/pay", dict(
        EXPAND, forgive=BOOLEAN, mandate=ID, off_session=BOOLEAN, paid_out_of_band=BOOLEAN,
        payment_method=ID, source=ID)),
    # docs.stripe.com/api/invoices/retrieve
    ("GET", "/v1/invoices/{id}", dict(EXPAND)),
    # docs.stripe.com/api/invoices/list
    ("GET", "/v1/invoices", dict(
        EXPAND, **PAGING,
        collection_method=enum("charge_automatically", "send_invoice"),
        created=RANGE, customer=ID, customer_account=ID, due_date=RANGE,
        status=enum("draft", "open", "paid", "uncollectible", "void"),
        subscription=ID,
    )),
    # docs.stripe.com/api/customers/create
    ("POST", "/v1/customers", CUSTOMER_CREATE),
    # docs.stripe.com/api/customers/retrieve
    ("GET", "/v1/customers/{id}", dict(EXPAND)),
    # docs.stripe.com/api/customers/update
    ("POST", "/v1/customers/{id}", CUSTOMER_UPDATE),
    # docs.stripe.com/api/customers/delete (tests delete customers as Stripe would)
    ("DELETE", "/v1/customers/{id}", {}),
    # docs.stripe.com/api/payment_methods/customer_list
    ("GET", "/v1/customers/{id}/payment_methods", dict(
        EXPAND, **PAGING,
        allow_redisplay=enum("always", "limited", "unspecified"),
        type=PAYMENT_METHOD_TYPES,
    )),
    # docs.stripe.com/api/checkout/sessions/create
    ("POST", "/v1/checkout/sessions", CHECKOUT_SESSION_CREATE),
    # docs.stripe.com/api/checkout/sessions/retrieve
    ("GET", "/v1/checkout/sessions/{id}", dict(EXPAND)),
    # docs.stripe.com/api/checkout/sessions/list
    ("GET", "/v1/checkout/sessions", dict(
        EXPAND, **PAGING,
        created=RANGE, customer=ID, customer_account=ID,
        customer_details=hash_of(email=STRING),
        payment_intent=ID, payment_link=ID,
        status=enum("complete", "expired", "open"),
        subscription=ID,
    )),
    # docs.stripe.com/api/checkout/sessions/expire
    ("POST", "/v1/checkout/sessions/{id}/expire", dict(EXPAND)),
    # docs.stripe.com/api/customer_portal/sessions/create
    ("POST", "/v1/billing_portal/sessions", PORTAL_SESSION_CREATE),
    # docs.stripe.com/api/customer_portal/configurations (create, list, retrieve, update)
    ("POST", "/v1/billing_portal/configurations", PORTAL_CONFIGURATION_CREATE),
    ("GET", "/v1/billing_portal/configurations", dict(
        EXPAND, **PAGING, active=BOOLEAN, is_default=BOOLEAN)),
    ("GET", "/v1/billing_portal/configurations/{id}", dict(EXPAND)),
    ("POST", "/v1/billing_portal/configurations/{id}", PORTAL_CONFIGURATION_UPDATE),
    # docs.stripe.com/api/subscription_schedules (create, retrieve, update, release, cancel, list)
    ("POST", "/v1/subscription_schedules", SCHEDULE_CREATE),
    ("GET", "/v1/subscription_schedules", dict(
        EXPAND, **PAGING, canceled_at=RANGE, completed_at=RANGE, created=RANGE, customer=ID,
        customer_account=ID, released_at=RANGE, scheduled=BOOLEAN)),
    ("GET", "/v1/subscription_schedules/{id}", dict(EXPAND)),
    ("POST", "/v1/subscription_schedules/{id}", SCHEDULE_UPDATE),
    ("POST", "/v1/subscription_schedules/{id}/release", dict(EXPAND, preserve_cancel_date=BOOLEAN)),
    ("POST", "/v1/subscription_schedules/{id}/cancel", dict(EXPAND, invoice_now=BOOLEAN, prorate=BOOLEAN)),
    # docs.stripe.com/api/prices/list
    ("GET", "/v1/prices", dict(
        EXPAND, **PAGING,
        active=BOOLEAN, created=RANGE, currency=CURRENCY,
        lookup_keys=array_of(STRING), product=ID,
        recurring=hash_of(interval=RECURRING_INTERVAL, meter=ID,
                          usage_type=enum("licensed", "metered")),
        type=enum("one_time", "recurring"),
    )),
    # docs.stripe.com/api/prices/create, docs.stripe.com/api/prices/update
    ("POST", "/v1/prices", PRICE_CREATE),
    ("POST", "/v1/prices/{id}", PRICE_UPDATE),
    # docs.stripe.com/api/products/create, /retrieve, /update
    ("POST", "/v1/products", PRODUCT_CREATE),
    ("GET", "/v1/products/{id}", dict(EXPAND)),
    ("POST", "/v1/products/{id}", PRODUCT_UPDATE),
    # docs.stripe.com/api/events/list
    ("GET", "/v1/events", dict(
        EXPAND, **PAGING,
        created=RANGE, delivery_success=BOOLEAN, type=STRING, types=array_of(STRING),
    )),
    # docs.stripe.com/api/events/retrieve
    ("GET", "/v1/events/{id}", dict(EXPAND)),
]


def endpoint(method: str, path: str):
    """The parameters of `method path`, or None when Stripe has no such endpoint here."""
    segments = path.rstrip("/").split("/")
    for m, pattern, params in ENDPOINTS:
        wanted = pattern.split("/")
        if m == method and len(wanted) == len(segments) and all(
                w == "{id}" and s or w == s for w, s in zip(wanted, segments)):
            return params
    return None


def split_name(name: str):
    """`a[b][0]` -> ["a", "b", "0"]; `expand[]` -> ["expand", ""]. None if malformed."""
    head, bracket, rest = name.partition("[")
    parts = [head]
    while bracket:
        inner, closed, rest = rest.partition("]")
        if not closed:
            return None
        parts.append(inner)
        if not rest:
            break
        if not rest.startswith("["):
            return None
        rest = rest[1:]
    return parts


def invalid(param: str, message: str, code=None):
    body = {"type": "invalid_request_error", "param": param, "message": message}
    if code:
        body["code"] = code
    return 400, {"error": body}


def unknown(param: str):
    return invalid(param, f"Received unknown parameter: {param}", "parameter_unknown")


def check_value(name: str, spec, value: str):
    if spec == STRING:
        return None
    is_enum = isinstance(spec, tuple) and spec[0] == "enum"
    if value == "" and (spec in (INTEGER, NUMBER, BOOLEAN, ID) or is_enum):
        return invalid(name, f"You passed an empty string for '{name}'. We assume empty values are "
                             f"an attempt to unset a parameter; however '{name}' cannot be unset.",
                       "parameter_invalid_empty")
    if spec == INTEGER:
        try:
            int(value)
        except ValueError:
            return invalid(name, f"Invalid integer: {value}", "parameter_invalid_integer")
    elif spec == NUMBER:
        try:
            float(value)
        except ValueError:
            return invalid(name, f"Invalid decimal: {value}")
    elif spec == BOOLEAN:
        if value not in ("true", "false"):
            return invalid(name, f"Invalid boolean: {value}")
    elif is_enum and value not in spec[1]:
        allowed = ", ".join(sorted(spec[1]))
        return invalid(name, f"Invalid {name}: must be one of {allowed}")
    return None


def check_param(name: str, seen: str, parts: list, spec, value: str):
    """Walks `parts` (the name's brackets below `seen`) down `spec`. Like Stripe, an unknown
    parameter is named down to its first unknown part (`subscription_data[metadta]`)."""
    if not parts:
        if isinstance(spec, tuple) and spec[0] in ("hash", "array", "map"):
            # An empty value unsets a hash or a list; any other plain value is not one.
            return None if value == "" else invalid(name, f"Invalid {spec[0]}")
        if spec == RANGE:
            return check_value(name, INTEGER, value)
        return check_value(name, spec, value)
    part, rest = parts[0], parts[1:]
    here = f"{seen}[{part}]"
    if spec == METADATA:
        # Keys are free-form; a value below a key is not a string.
        return unknown(f"{here}[{rest[0]}]") if rest else None
    if spec == RANGE:
        return check_param(name, seen, parts, RANGE_BOUNDS, value)
    if not isinstance(spec, tuple):
        return unknown(here)
    if spec[0] == "array":
        if part != "" and not part.isdigit():
            return invalid(name, f"Invalid array index in {name}")
        return check_param(name, here, rest, spec[1], value)
    if spec[0] == "hash":
        children = spec[1]
        if children is None:
            return None
        if part not in children:
            return unknown(here)
        return check_param(name, here, rest, children[part], value)
    return unknown(here)


def check(method: str, path: str, pairs: list):
    """None when Stripe would accept these parameters on `method path`, else (status, body).
    `pairs` are the decoded (name, value) pairs of the query and the form, blanks kept."""
    params = endpoint(method, path)
    if params is None:
        return 404, {"error": {"type": "invalid_request_error",
                               "message": f"Unrecognized request URL ({method}: {path})."}}
    for name, value in pairs:
        parts = split_name(name)
        if parts is None or parts[0] not in params:
            return unknown(name)
        refused = check_param(name, parts[0], parts[1:], params[parts[0]], value)
        if refused is not None:
            return refused
    return None
