"""Question frames from support desks (shopping, SaaS billing, IT help, HR) for the verifier's generated pairs."""

from __future__ import annotations

from evals.verifier_data import CITIES, DATES, NUMS, PEOPLE, F, Frame

SUPPORT_FRAMES: list[Frame] = [
    # shopping
    F(
        "shop",
        "Is {A} cheaper than {B}?|Does {A} cost less than {B}?|Is {B} more expensive than {A}?|"
        "Is {A} priced lower than {B}?",
        A="the blue model/the pro version/the large size/the bundle",
        B="the red model/the standard version/the small size/the single item",
    ),
    F(
        "shop",
        "How do I {act} my order?|What's the way to {act} an order I placed?|Can you help me {act} my order?|"
        "I want to {act} my order, how?",
        act="cancel/reorder~place again",
    ),
    F(
        "shop",
        "Refund order {num} to {tgt}|Please refund order #{num} to {tgt}|Can order {num} be refunded to {tgt}?|"
        "I'd like the refund for order {num} to go to {tgt}",
        num=NUMS,
        tgt="my card~my credit card/store credit/my PayPal account/a gift card/my bank account",
    ),
    F(
        "shop",
        "Where is order {num}?|Can you track order #{num}?|What's the status of order {num}?|"
        "Has order {num} shipped yet?",
        num=NUMS,
    ),
    F(
        "shop",
        "Can I ship my order to {ent}?|Do you deliver to {ent}?|Is shipping to {ent} available?|"
        "Will you send packages to {ent}?",
        ent=CITIES,
    ),
    F(
        "shop",
        "Can I {act} items in my cart?|How do I {act} something in my cart?|Is it possible to {act} cart items?",
        act="add/remove",
    ),
    F(
        "shop",
        "Can I pay with {tgt}?|Do you accept {tgt}?|Is {tgt} an accepted payment method?|"
        "Will you take {tgt} as payment?",
        tgt="PayPal/Apple Pay/a debit card/cash on delivery/bank transfer/Bitcoin",
    ),
    F(
        "shop",
        "Can I exchange an item bought on {date}?|Is an item purchased {date} still exchangeable?|"
        "Could I swap something I bought on {date}?",
        date=DATES,
    ),
    F(
        "shop",
        "Do you offer {tgt} shipping?|Is {tgt} delivery available?|Can I choose {tgt} shipping?",
        tgt="express/overnight/free/international/same-day",
    ),
    F(
        "shop",
        "How do I {act} the newsletter?|How can I {act} your mailing list?|What do I do to {act} marketing emails?",
        act="subscribe to~sign up for/unsubscribe from~opt out of",
    ),
    F(
        "shop",
        "Should I {act} {ent} stock now?|Is now a good time to {act} {ent} shares?|Would you {act} {ent} shares today?",
        act="buy/sell",
        ent="Apple/Tesla/Nvidia/Amazon",
    ),
    F(
        "shop",
        "Is the return window {num} days?|Do I have {num} days to return items?|Can I return things within {num} days?",
        num="14/30/60/90",
    ),
    # SaaS billing
    F(
        "saas",
        "Is the {A} cheaper than the {B}?|Does the {A} cost less than the {B}?|Is the {B} pricier than the {A}?",
        A="premium plan/annual plan/team plan",
        B="basic plan/monthly plan/starter plan",
    ),
    F(
        "saas",
        "How do I {act} my subscription?|What are the steps to {act} my plan?|Can you help me {act} my plan?|"
        "I need to {act} my subscription",
        act="upgrade/downgrade",
    ),
    F(
        "saas",
        "How do I {act} two-factor authentication?|Where can I {act} 2FA?|What's the way to {act} 2FA on my account?",
        act="enable~turn on/disable~turn off",
    ),
    F(
        "saas",
        "Can I get my invoice as a {tgt}?|Is it possible to download invoices in {tgt} format?|"
        "How do I export my invoice to {tgt}?",
        tgt="PDF/CSV/Excel file/XML",
    ),
    F(
        "saas",
        "Why was I charged ${num} this month?|What is the ${num} charge on my bill?|"
        "I see a charge of ${num}, what is it for?",
        num="49/99/12/250/19/500",
    ),
    F(
        "saas",
        "How do I {act} a seat on my team plan?|Can I {act} a user seat?|What's the process to {act} a seat?",
        act="add/remove",
    ),
    F(
        "saas",
        "Will my plan renew on {date}?|Does my subscription renew on {date}?|Is {date} my renewal date?",
        date=DATES,
    ),
    F(
        "saas",
        "Do you send billing alerts by {tgt}?|Can I get payment reminders via {tgt}?|"
        "Is there a {tgt} notification for failed payments?",
        tgt="email/SMS~text message/Slack/push notification",
    ),
    F(
        "saas",
        "Can I move my workspace from {A} to {B}?|How do I migrate my workspace from {A} to {B}?|"
        "Is migrating from {A} to {B} supported?",
        A="the free tier/the EU region/Google login",
        B="the paid tier/the US region/SSO",
    ),
    F(
        "saas",
        "Does {ent}'s account have admin rights?|Is {ent} an admin on our workspace?|"
        "Has {ent} been given admin access?",
        ent=PEOPLE,
    ),
    F(
        "saas",
        "Can I pay annually with a {num}% discount?|Is there a {num}% discount for yearly billing?|"
        "Do annual plans come with {num}% off?",
        num="10/15/20/25",
    ),
    # IT help
    F(
        "it",
        "How do I reset my password?|I forgot my password, how do I change it?|What's the way to reset my "
        "login password?|Help, I need a new password",
    ),
    F(
        "it",
        "How do I {act} my account?|What should I do to {act} my account?|Can you tell me how to {act} my account?",
        act="lock/unlock",
    ),
    F(
        "it",
        "How do I install the VPN on {tgt}?|What's the VPN setup for {tgt}?|Can I set up the VPN on {tgt}?|"
        "Steps to install the VPN client on {tgt}?",
        tgt="iOS~an iPhone/Android/Windows/macOS~a Mac/Linux",
    ),
    F(
        "it",
        "How do I connect to the printer on floor {num}?|Can I print to the floor {num} printer?|"
        "What's the setup for the printer on floor {num}?",
        num="2/3/4/5/7/9",
    ),
    F(
        "it",
        "Is the {tgt} down?|Is there an outage on the {tgt}?|Are you seeing problems with the {tgt}?",
        tgt="email server/VPN/wiki/file share/CI system",
    ),
    F(
        "it",
        "How do I {act} Bluetooth on my laptop?|Where do I {act} Bluetooth?|What's the way to {act} Bluetooth?",
        act="turn on~enable/turn off~disable",
    ),
    F(
        "it",
        "Should I back up my files {rel} the update?|Do I need a backup {rel} updating?|"
        "Is a backup needed {rel} I install the update?",
        rel="before/after",
    ),
    F(
        "it",
        "Can I copy files from {A} to {B}?|How do I transfer files from {A} to {B}?|"
        "What's the way to move files from {A} to {B}?",
        A="my laptop/the shared drive/OneDrive",
        B="a USB stick/my phone/Dropbox",
    ),
    F(
        "it",
        "Why is my {tgt} so slow?|My {tgt} is really slow, what can I do?|How can I speed up my {tgt}?",
        tgt="laptop/Wi-Fi~wireless connection/email/phone",
    ),
    F(
        "it",
        "Can {ent} get access to the finance folder?|How do I give {ent} access to the finance folder?|"
        "Please grant {ent} access to the finance folder",
        ent=PEOPLE,
    ),
    # HR
    F("hr", "How many vacation days do I get?|What is my annual leave allowance?|How much paid time off do I have?"),
    F(
        "hr",
        "How do I {act} the health insurance plan?|What's the process to {act} the health plan?|"
        "Can I {act} the company health insurance?",
        act="join~enroll in/leave~opt out of",
    ),
    F("hr", "Can I take leave on {date}?|Is it OK to take {date} off?|Can I book a day off for {date}?", date=DATES),
    F(
        "hr",
        "When is payday in {ent}?|What day do we get paid in {ent}?|When are salaries paid in {ent}?",
        ent="January/February/March/May/August/October",
    ),
    F(
        "hr",
        "Does the {tgt} office allow remote work?|Can {tgt} office staff work from home?|"
        "Is remote work allowed at the {tgt} office?",
        tgt=CITIES,
    ),
    F("hr", "Who is {ent}'s manager?|Who does {ent} report to?|Which manager does {ent} report to?", ent=PEOPLE),
    F(
        "hr",
        "Is my salary {rel} the market average?|Am I paid {rel} the market rate?|Is my pay {rel} average for my role?",
        rel="above/below",
    ),
    F(
        "hr",
        "How do I {act} my overtime hours?|Where do I {act} overtime?|How can I {act} extra hours I worked?",
        act="submit~log/cancel~withdraw",
    ),
    F(
        "hr",
        "Do I get {num} weeks of parental leave?|Is parental leave {num} weeks?|"
        "Are we entitled to {num} weeks of parental leave?",
        num="6/12/16/26",
    ),
]
