"""Frames whose rewordings share few content words, with near-topic different questions per domain: banking,
insurance, travel, mobile plans and energy (the services are in ``verifier_frames_services``)."""

from __future__ import annotations

from evals.verifier_data import F, Frame

ACCOUNT_FRAMES: list[Frame] = [
    # retail banking
    F(
        "banking",
        "How do I report a lost card?|I've misplaced my plastic and can't find it anywhere, what should I do?|"
        "Card gone missing, who do I tell?|What's the procedure when my bank card has disappeared?",
    ),
    F(
        "banking",
        "How do I dispute a charge I didn't make?|There's a purchase on my statement that wasn't me, what do I do?|"
        "Report an unauthorised transaction|Someone used my card without my permission, how do I flag it?",
    ),
    F(
        "banking",
        "What's the daily ATM withdrawal limit?|How much cash can I take out of a machine in one day?|"
        "Max I can withdraw at the cashpoint per day?|"
        "Is there a cap on how much money I can pull from an ATM each day?",
    ),
    F(
        "banking",
        "Are there fees for using another bank's ATM?|"
        "Do I get charged for taking out cash at a machine that isn't yours?|Out-of-network ATM fee?|"
        "Will withdrawing money from a different bank's cashpoint cost me anything?",
    ),
    F(
        "banking",
        "How do I add a joint holder to my account?|Can another person be named co-owner alongside me?|"
        "Make my account shared with a second person|Adding a joint account holder, how?",
    ),
    F(
        "banking",
        "How do I remove a joint holder from my account?|Can the other named owner be dropped so it's only mine?|"
        "Take the co-owner off my account|Removing a joint account holder, how?",
    ),
    F(
        "banking",
        "How do I update my mailing address?|I moved house, how do I tell you where I live now?|"
        "Change of address on my profile|Where do I edit the postal address you have for me?",
    ),
    F(
        "banking",
        "How does mobile deposit work?|Steps for paying in a cheque from my smartphone|"
        "Snap a photo of a check to put it in my account, how?|Deposit a cheque with the app, how?",
    ),
    # insurance claims
    F(
        "insurance",
        "How do I file an insurance claim?|What's the process for requesting a payout under my policy?|"
        "Claim submission steps?|I had a loss and want the insurer to cover it, where do I begin?",
    ),
    F(
        "insurance",
        "How can I check the status of my claim?|Any update on the payout I asked for?|Track claim progress|"
        "Where do I see how far along my case is with you?",
    ),
    F(
        "insurance",
        "How long does it take to get paid on a claim?|After filing, how many days until the money arrives?|"
        "Claim payout timeline?|When will I receive the settlement once I've submitted?",
    ),
    F(
        "insurance",
        "What is my deductible?|How much do I pay out of pocket before coverage kicks in?|"
        "What's the excess on my policy?|Amount I owe before the insurer starts paying?",
    ),
    F(
        "insurance",
        "What documents do I need to file a claim?|Which paperwork should I attach when asking for a payout?|"
        "Required proof for claims?|What evidence must I send along with my claim?",
    ),
    F(
        "insurance",
        "How do I add a driver to my car insurance?|I want someone else covered to drive my vehicle, how?|"
        "Extend my auto policy to one more motorist|Adding another named driver, how?",
    ),
    F(
        "insurance",
        "How do I take a driver off my car insurance?|Remove a named driver from my auto policy|"
        "Delete a motorist from my cover|Drop one of the people listed to drive my vehicle",
    ),
    F(
        "insurance",
        "How do I cancel my insurance policy?|I want to end my coverage, what do I do?|Terminate policy|"
        "Stop my insurance",
    ),
    F(
        "insurance",
        "How do I renew my policy?|My coverage ends soon, how do I keep it going?|Policy renewal process?|"
        "Continue my insurance for another term",
    ),
    # airline
    F(
        "airline",
        "What's the checked baggage allowance?|How much luggage can go in the hold?|Hold bag limit?|"
        "Checked bag allowance on my ticket?",
    ),
    F(
        "airline",
        "How much does an extra checked bag cost?|What's the price for one more suitcase in the hold?|"
        "Additional luggage fee?|What will I pay to bring another case?",
    ),
    F(
        "airline",
        "When does online check-in open?|How early can I check in on the website?|"
        "How many hours before departure can I get my boarding pass on the web?|Web check-in start time?",
    ),
    F(
        "airline",
        "How late can I check in at the airport?|Airport check-in deadline?|"
        "Until what time before takeoff will the desk still accept me?|When does the counter close for my flight?",
    ),
    F(
        "airline",
        "The airline cancelled my flight, can I get my money back?|Am I entitled to a refund if you cancel my flight?|"
        "Refund for a cancelled flight?|My trip was called off by the carrier, do I get reimbursed?",
    ),
    F(
        "airline",
        "Do I get compensation for a delayed flight?|Is there any payout when the plane leaves late?|"
        "Delay compensation?|Will you pay me anything because departure was behind schedule?",
    ),
    F(
        "airline",
        "How do I choose my seat?|Where can I pick where I sit on the plane?|Seat selection?|"
        "Can I reserve a specific spot in the cabin?",
    ),
    F(
        "airline",
        "Is seat selection free?|Do I have to pay to choose where I sit?|Does picking a seat cost extra?|"
        "Any charge for reserving a particular spot on board?",
    ),
    # hotel
    F(
        "hotel",
        "Is breakfast included in the room rate?|Do I get a morning meal with my stay?|Breakfast included?|"
        "Does the price cover food in the mornings?",
    ),
    F(
        "hotel",
        "Can I check out late?|Is late checkout available?|"
        "Could I leave the room later than the usual departure time?|"
        "I'd like to stay in my room a bit longer on the last day, is that possible?",
    ),
    F(
        "hotel",
        "Can I leave my bags after checkout?|Do you store luggage for guests who have checked out?|"
        "Luggage storage after departure?|Is there somewhere to keep my suitcases once I've left my room?",
    ),
    F(
        "hotel",
        "Do you have parking?|Is there somewhere to leave my car at the hotel?|Parking on site?|"
        "Can guests park their vehicles at the property?",
    ),
    F(
        "hotel",
        "How much is parking?|What do you charge to leave a vehicle on the premises?|Parking price?|"
        "How much does it cost to park at the hotel?",
    ),
    F(
        "hotel",
        "Are pets allowed?|Can animals stay in the rooms?|Is the hotel animal-friendly?|"
        "Do you accept guests travelling with pets?",
    ),
    F(
        "hotel",
        "Do you offer an airport shuttle?|Can I get a ride between the terminal and the hotel?|"
        "Airport transfer service available?|Does the property run a bus to and from the airport?",
    ),
    F(
        "hotel",
        "Is a deposit required at check-in?|Do you hold money on my card when I arrive?|Security deposit on arrival?|"
        "Will you block funds as a guarantee when I get there?",
    ),
    # mobile plans
    F(
        "mobile",
        "How do I turn on roaming?|Enable roaming on my line|What do I do so my phone works on foreign networks?|"
        "Activate international roaming",
    ),
    F(
        "mobile",
        "How do I disable roaming?|Switch roaming off|Stop my phone from connecting to networks abroad|"
        "Deactivate international roaming",
    ),
    F(
        "mobile",
        "How do I upgrade to a bigger plan?|I want more allowance, how do I move up a tier?|Switch to a higher plan|"
        "Can I get a package with a larger allowance?",
    ),
    F(
        "mobile",
        "How do I downgrade my plan?|I want to move to a cheaper tier|Switch to a smaller plan|"
        "Can I reduce my monthly package to pay less?",
    ),
    F(
        "mobile",
        "Can I keep my number if I switch to you?|Will my existing number come with me when I join your network?|"
        "Port my number to your network|Bring my current digits over from another provider?",
    ),
    F(
        "mobile",
        "How do I take my number to another carrier?|"
        "I'm moving to a different provider, how do I bring my number with me?|Port out my number|"
        "Transfer my line to a competitor",
    ),
    F(
        "mobile",
        "How do I get a new SIM card?|Order a replacement SIM|Request a fresh chip for my handset|"
        "I need another SIM, how?",
    ),
    F(
        "mobile",
        "Can I switch to an eSIM?|Can I move my line onto a built-in chip instead of a card?|Convert my line to eSIM|"
        "Is a digital SIM available instead of the plastic one?",
    ),
    # energy and utilities
    F(
        "energy",
        "How do I submit a meter reading?|Where do I send you the figures from my meter?|Give a meter read|"
        "How can I tell you what the dial in my cupboard says?",
    ),
    F(
        "energy",
        "How do I get a smart meter installed?|Book a smart meter fitting|"
        "I'd like a meter that sends readings automatically, how?|Request a connected gauge for my home",
    ),
    F(
        "energy",
        "What should I do with my energy account when I move home?|Relocating soon, how do I handle my supply?|"
        "Moving house, what happens to my account?|I'm changing address; what steps do I take with my utility?",
    ),
    F(
        "energy",
        "How do I set up direct debit?|Can my bill be taken from my bank account automatically?|"
        "Automatic payments from my bank, how?|Arrange for charges to come out of my checking on their own",
    ),
    F(
        "energy",
        "Can I pay my bill by card?|Do you take card payments?|Settle my balance with Visa or Mastercard?|"
        "Is it possible to clear what I owe using plastic?",
    ),
    F(
        "energy",
        "There's a power outage, who do I call?|My lights went out, how do I report it?|Report a blackout|"
        "The electricity has gone off at my place, what now?",
    ),
    F(
        "energy",
        "Can I lock in my rate?|Is a fixed-price deal available?|"
        "Do you offer tariffs where the unit price stays the same?|Fixed tariff?",
    ),
    F(
        "energy",
        "Is there a fee to leave my fixed deal early?|What does it cost to break my contract before it ends?|"
        "Early termination charge?|Will I be penalised for switching supplier mid-term?",
    ),
]
