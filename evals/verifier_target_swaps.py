"""Target swaps for the verifier: the same request with another destination, method, recipient or format."""

from __future__ import annotations

import random

from evals.verifier_data import Example, reword, table_frames

# Same action, other destination/method/channel/recipient/format/platform/account/currency/language/size/colour.
# Forms are rewordings of one request; {t} takes mutually different values ("a~b" = two spellings of one value).
TARGET_FRAMES: list[tuple[str, str]] = [
    (
        "Refund order 5521 to {t}|Please send the refund for order 5521 to {t}|Can order 5521 be refunded to {t}?|"
        "I want my order 5521 refund on {t}",
        "my card~my credit card/store credit/my PayPal account/a gift card/my bank account",
    ),
    (
        "Send the quarterly report to {t}|Email the quarterly report to {t}|"
        "Can you forward the quarterly report to {t}?|"
        "Please share the quarterly report with {t}",
        "Alice/Bob/the finance team/my manager/the client/the auditors",
    ),
    (
        "Export the data as {t}|Can I download the data in {t} format?|Give me the data as a {t} file|"
        "How do I export my data to {t}?",
        "CSV/JSON/PDF/Excel~XLSX/XML/Parquet",
    ),
    (
        "Translate this paragraph into {t}|Can you translate this paragraph to {t}?|What is this paragraph in {t}?|"
        "Please put this paragraph into {t}",
        "French/German/Spanish/Japanese/Italian/Portuguese/Chinese",
    ),
    (
        "Convert 100 dollars to {t}|How much is 100 USD in {t}?|What are 100 dollars worth in {t}?|"
        "Change 100 dollars into {t}",
        "euros/yen/pounds~British pounds/Swiss francs/pesos/rupees",
    ),
    (
        "Order a {t} pizza|I'd like a {t} pizza please|Can I get a {t} pizza?|One {t} pizza, please",
        "small/medium/large/extra large",
    ),
    (
        "Do you have this shirt in {t}?|Is this shirt available in {t}?|Can I get the shirt in {t}?|"
        "Does this shirt come in {t}?",
        "red/blue/black/white/green/size M~medium/size L~large/size S~small",
    ),
    (
        "Post the announcement on {t}|Can you share the announcement to {t}?|Publish the announcement on {t}|"
        "Please put the announcement up on {t}",
        "Twitter~X/LinkedIn/Facebook/Slack/our blog/Instagram",
    ),
    (
        "Deploy the app to {t}|How do I deploy the app to {t}?|Push the latest build to {t}|"
        "Can you release the app on {t}?",
        "staging/production/AWS/Google Cloud/Azure/Heroku",
    ),
    (
        "Pay the invoice from {t}|Use {t} to pay this invoice|Can I settle the invoice from {t}?|"
        "Charge the invoice to {t}",
        "the business account/my personal account/the savings account/the company card",
    ),
    (
        "How do I contact support by {t}?|Can I reach customer support via {t}?|Is support available by {t}?|"
        "I want to talk to support over {t}",
        "phone/email/live chat~chat/WhatsApp/post~mail",
    ),
    (
        "Ship my package with {t}|Can you send my parcel via {t}?|I want my package shipped by {t}|"
        "Use {t} for my shipment",
        "UPS/FedEx/DHL/regular mail~standard post/USPS",
    ),
    (
        "Schedule the meeting on {t}|Set up the call on {t}|Can we hold the meeting over {t}?|"
        "Book the meeting using {t}",
        "Zoom/Microsoft Teams~Teams/Google Meet/Webex/Slack huddles",
    ),
    (
        "Download the app for {t}|Is there an app for {t}?|Where do I get the {t} app?|"
        "How do I install the app on {t}?",
        "iPhone~iOS/Android/Windows/macOS/Linux/iPad",
    ),
    (
        "Reply to the customer in {t}|Write the answer to the customer in {t}|Can you respond to the customer in {t}?|"
        "Answer the customer's email in {t}",
        "English/Spanish/French/German/Dutch",
    ),
    (
        "Save the file to {t}|Can you store this file in {t}?|Upload the file to {t}|Put the file on {t}",
        "Dropbox/Google Drive/the desktop/OneDrive/the shared drive/a USB stick",
    ),
    (
        "Assign the ticket to {t}|Give this ticket to {t}|Can you route the ticket to {t}?|Hand the ticket over to {t}",
        "Maria/Chen/Priya/Omar/the backend team/the support team",
    ),
    (
        "Set the theme to {t}|Switch the app to {t} mode|How do I turn on {t} mode?|Change the display to {t} mode",
        "dark/light/high contrast",
    ),
    (
        "Change my default currency to {t}|Set my account currency to {t}|Can I switch my currency to {t}?|"
        "Show prices in {t}",
        "euros/dollars~US dollars/pounds/yen/Canadian dollars",
    ),
    (
        "Sign me up with my {t} account|Can I register using {t}?|Create my account through {t}|Let me sign up via {t}",
        "Google/Apple/Facebook/GitHub/Microsoft",
    ),
    (
        "Print the document in {t}|Can I print this in {t}?|Print this file using {t}|Make a {t} printout of this",
        "colour~color/black and white/A3/A4/double-sided/single-sided",
    ),
    (
        "Convert the image to {t}|Save this picture as {t}|Can you turn the image into a {t}?|Export the photo as {t}",
        "JPEG~JPG/PNG/WebP/GIF/SVG/TIFF",
    ),
    (
        "Move my flight to the {t} departure|Rebook me on the {t} flight|Can I switch to the {t} flight?|"
        "Put me on the {t} flight instead",
        "morning/afternoon/evening/red-eye~overnight",
    ),
    (
        "Withdraw cash from {t}|Take money out of {t}|Can I withdraw from {t}?|I want to withdraw cash from {t}",
        "my checking account/my savings account/the joint account/my credit card",
    ),
    (
        "Upgrade my seat to {t}|Can I move up to {t}?|Book me into {t}|Change my ticket to {t}",
        "business class/first class/premium economy/economy plus",
    ),
    (
        "Send the verification code to {t}|Text the login code to {t}|Can the code go to {t}?|"
        "Deliver my one-time code to {t}",
        "my phone~my mobile/my work email/my personal email/the authenticator app",
    ),
    (
        "Book a room at the {t} hotel|Reserve me a room in the {t} hotel|Can I stay at the {t} hotel?|"
        "Get me a booking at the {t} hotel",
        "airport/downtown/beach/conference centre",
    ),
    (
        "Write the summary as {t}|Give me the summary in {t}|Can you format the summary as {t}?|Summarise this in {t}",
        "bullet points/a table/one paragraph/a haiku/Markdown",
    ),
    (
        "Transfer $200 to {t}|Send $200 to {t}|Please wire $200 to {t}|Move $200 over to {t}",
        "Alice/my landlord/my brother/the electrician/my savings~my savings account",
    ),
    (
        "Install the package with {t}|How do I install the package using {t}?|Add the package via {t}|"
        "Can I get this package through {t}?",
        "pip/conda/npm/Homebrew~brew/apt",
    ),
    (
        "Write this function in {t}|Can you implement this function in {t}?|Show me this function in {t}|"
        "Port this function to {t}",
        "Python/JavaScript/Go/Rust/Java/C++",
    ),
    (
        "Set an alarm for {t}|Wake me up at {t}|Can you set my alarm to {t}?|I need an alarm at {t}",
        "6 am/7 am/6:30/8 am/noon",
    ),
    (
        "Redirect my mail to {t}|Forward my post to {t}|Can my mail go to {t}?|Send my letters to {t}",
        "my new address/my office/my parents' house/a PO box",
    ),
]
TARGET_NEGATIVES = 900
TARGET_POSITIVES = 450


def target_pairs(rng: random.Random) -> list[Example]:
    """One request with two different targets (different), or one target reworded (same)."""
    out: list[Example] = []
    frames = table_frames(TARGET_FRAMES)

    def say(form: str, value: str) -> str:
        return form.replace("{t}", rng.choice(value.split("~")))

    while len(out) < TARGET_NEGATIVES:
        forms, values = rng.choice(frames)
        v1, v2 = rng.sample(values, 2)
        f1 = rng.choice(forms)
        f2 = f1 if rng.random() < 0.5 else rng.choice(forms)
        second = say(f2, v2)
        out.append(
            Example(say(f1, v1), reword(second, rng) if rng.random() < 0.2 else second, False, "gen:target_swap")
        )
    while len(out) < TARGET_NEGATIVES + TARGET_POSITIVES:
        forms, values = rng.choice(frames)
        value = rng.choice(values)
        f1, f2 = rng.sample(forms, 2)
        second = say(f2, value)
        out.append(
            Example(say(f1, value), reword(second, rng) if rng.random() < 0.3 else second, True, "gen:target_same")
        )
    return out
