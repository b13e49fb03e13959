"""Frames whose rewordings share few content words, with near-topic different questions per domain: pharmacy,
courses, government, home internet, car rental, food delivery, gym and streaming."""

from __future__ import annotations

from evals.verifier_data import F, Frame

SERVICE_FRAMES: list[Frame] = [
    # pharmacy
    F(
        "pharmacy",
        "Is my prescription ready?|Can I come collect my meds yet?|Has my order at the pharmacy been filled?|"
        "Are my pills done so I can pick them up?",
    ),
    F(
        "pharmacy",
        "Do you deliver prescriptions?|Can my medication be sent to my house?|Home delivery of meds?|"
        "Will the pharmacy bring my medicine to me?",
    ),
    F(
        "pharmacy",
        "Is there a charge for prescription delivery?|How much do you charge to send meds to my home?|"
        "Medication delivery fee?|Does getting my medicine dropped off cost extra?",
    ),
    F(
        "pharmacy",
        "Can I get the generic version instead?|Is there a non-brand equivalent I could have?|Switch to generic?|"
        "Could you fill it with the unbranded alternative?",
    ),
    F(
        "pharmacy",
        "Should I take this medication with food?|Do these pills need to go down with a meal?|"
        "Empty stomach or after eating for this medicine?|Does this drug have to be taken alongside eating?",
    ),
    F(
        "pharmacy",
        "What do I do if I miss a dose?|Forgot to take my medicine, what now?|Missed dose advice?|"
        "I accidentally skipped a tablet, how should I handle it?",
    ),
    F(
        "pharmacy",
        "Do you give flu shots?|Can I get vaccinated against influenza here?|Flu jab available?|"
        "Is the seasonal vaccine offered at your counter?",
    ),
    F(
        "pharmacy",
        "Do I need an appointment for a flu shot?|Can I walk in for my flu jab?|"
        "Is booking required before getting vaccinated against influenza?|Flu vaccine: appointment or drop-in?",
    ),
    # courses and education
    F(
        "courses",
        "How do I enroll in a course?|Sign me up for a class|What's the registration process for a module?|"
        "I want to join a program, where do I register?",
    ),
    F(
        "courses",
        "How do I drop a course?|I want to leave a class I signed up for|Withdraw from a module|"
        "How can I get out of a program I registered for?",
    ),
    F(
        "courses",
        "Do I get a certificate when I finish?|Is there proof of completion at the end?|Certificate on completion?|"
        "Will I receive a document showing I completed the course?",
    ),
    F(
        "courses",
        "How much does the course cost?|What's the tuition?|Price for the class?|"
        "How much will I pay to take this program?",
    ),
    F(
        "courses",
        "Can I pay tuition in instalments?|Is there a payment plan for fees?|Split the course fee into parts?|"
        "Do you allow paying for the class bit by bit?",
    ),
    F(
        "courses",
        "Can I still access course materials after it ends?|Will the lessons remain available once I finish?|"
        "Do I keep the content after completion?|Post-course access to resources?",
    ),
    F(
        "courses",
        "Can I hand in an assignment late?|Are overdue assignments still accepted?|"
        "Can I turn in my homework after the due date?|Late submission allowed?",
    ),
    F(
        "courses",
        "How do I ask for an extension on an assignment?|I need more time for my homework, who do I contact?|"
        "Request extra days to submit coursework|Extension request process?",
    ),
    # government services and taxes
    F(
        "gov",
        "When is the deadline to file my tax return?|What's the last day to submit my taxes?|Tax return due date?|"
        "By when must the revenue office receive my annual return?",
    ),
    F(
        "gov",
        "How do I get an extension to file my taxes?|I need more time to submit my return, what do I do?|"
        "Request a filing extension|Can I push back the due date for my tax paperwork?",
    ),
    F(
        "gov",
        "How do I check on my tax refund?|Track the overpayment the revenue service owes me|Tax refund status?|"
        "Has the money back from my return been processed yet?",
    ),
    F(
        "gov",
        "Can I pay my tax bill in instalments?|Is there a payment plan for what I owe the tax authority?|"
        "Spread my tax debt over time|Can the amount I owe the government be split into smaller payments?",
    ),
    F(
        "gov",
        "Where can I find my tax ID number?|I can't locate my TIN, where would it be?|"
        "Where is my taxpayer identification number shown?|Tax identifier lookup",
    ),
    F(
        "gov",
        "How do I renew my passport?|My travel document is about to expire, how do I get a new one?|"
        "Passport renewal process?|What's needed to replace a travel document that's running out?",
    ),
    F(
        "gov",
        "How long does passport renewal take?|When will my new passport arrive after I apply?|"
        "Passport processing time?|How soon will I have my renewed travel document?",
    ),
    F(
        "gov",
        "How do I change the address on my driving licence?|I moved, how do I update my license?|"
        "New address on driver's license|Where do I report a change of residence for my driving permit?",
    ),
    # home internet and router
    F(
        "router",
        "How do I change my wifi password?|I want a new key for my wireless network|Update the network passphrase|"
        "How can I set a different code for getting online at home?",
    ),
    F(
        "router",
        "Where can I find my wifi password?|I've forgotten the key to join my home network, where do I look it up?|"
        "Lost the wireless passphrase, how do I see it?|Wifi password location?",
    ),
    F(
        "router",
        "How do I restart my router?|What's the right way to reboot the modem?|Power cycle the router|"
        "Turn the wifi box off and on again, how?",
    ),
    F(
        "router",
        "How do I factory reset my router?|Wipe the modem back to default settings|"
        "Restore the wifi box to how it came out of the packaging|Router hard reset?",
    ),
    F(
        "router",
        "Is there an internet outage in my area?|Is broadband down near me?|"
        "Any service disruption in my neighbourhood?|Are other people around here also offline?",
    ),
    F(
        "router",
        "Can I get faster internet?|How do I move to a quicker broadband package?|Upgrade my connection speed|"
        "Is a higher-bandwidth plan available for my home?",
    ),
    F(
        "router",
        "When will the technician come to install my internet?|What day is my broadband setup appointment?|"
        "Engineer visit date?|When is someone coming to connect my home?",
    ),
    F(
        "router",
        "How do I set up a guest wifi network?|Create a separate network for visitors|Guest wifi setup?|"
        "How do I give visitors their own wireless access?",
    ),
    # car rental
    F(
        "carrental",
        "What's the minimum age to rent a car?|How old do I have to be to hire a vehicle?|"
        "Youngest driver you'll rent to?|Age requirement for rentals?",
    ),
    F(
        "carrental",
        "Is there a young driver surcharge?|Do renters under a certain age pay extra?|Young driver fee?|"
        "Do you charge more if the person renting is young?",
    ),
    F(
        "carrental",
        "Can I drop the car off at a different location?|One-way rental possible?|"
        "Can I return the vehicle somewhere other than where I picked it up?|Leave the car at another branch?",
    ),
    F(
        "carrental",
        "What happens if I return the car late?|What if I'm delayed bringing the vehicle back?|Late return policy?|"
        "Consequences of dropping off the rental after the due time?",
    ),
    F(
        "carrental",
        "Do I need to refill the tank before returning?|Should the car come back full of gas?|Fuel policy on return?|"
        "Must I fill up before dropping off the rental?",
    ),
    F(
        "carrental",
        "Can I add a second driver?|Can another person share the wheel on this booking?|Additional driver?|"
        "Put another person on the rental agreement as a driver",
    ),
    F(
        "carrental",
        "How much is the security deposit?|What amount do you hold on my card at pickup?|Rental deposit amount?|"
        "How big is the hold placed when I collect the car?",
    ),
    F(
        "carrental",
        "How do I cancel my car rental?|I've changed plans and want to call off the vehicle I reserved, how?|"
        "Cancel booking|Scrap my hire reservation",
    ),
    F(
        "carrental",
        "How do I extend my rental?|Can I hold on to the vehicle longer than planned?|Rental extension|"
        "Keep the hire car for more days",
    ),
    # food delivery
    F(
        "food",
        "Where's my food order right now?|Track my meal|Can I see the courier's location?|"
        "Where is the delivery at the moment?",
    ),
    F(
        "food",
        "An item is missing from my order, what do I do?|Something I paid for wasn't in the bag|"
        "Part of my meal never arrived, help?|Missing item",
    ),
    F(
        "food",
        "I got the wrong order, what should I do?|This delivery belongs to a different customer|"
        "The bag that arrived is someone else's food|Received another person's meal",
    ),
    F(
        "food",
        "How much is the delivery fee?|What do you charge to bring food to my door?|Delivery cost?|"
        "What will I pay to have the meal brought over?",
    ),
    F(
        "food",
        "Is there a minimum order amount?|Do I need to spend a certain amount to check out?|Minimum basket value?|"
        "What's the least I can order?",
    ),
    F(
        "food",
        "How do I tip the courier?|Can I give the delivery person something extra through the app?|Add a tip|"
        "Leave a gratuity for the rider",
    ),
    F(
        "food",
        "Can I change the address after I've ordered?|I entered the wrong location, can I fix where it's going?|"
        "Update the drop-off spot on an active order|Redirect my meal somewhere else",
    ),
    F(
        "food",
        "Can I collect the order myself instead of delivery?|Is pickup available?|"
        "I'd rather grab the food from the restaurant|Takeaway collection option?",
    ),
    # gym membership
    F(
        "gym",
        "How do I cancel my gym membership?|I want to quit the gym, how?|End my membership|"
        "Terminate my contract with the fitness club",
    ),
    F(
        "gym",
        "Can I freeze my membership?|Pause my gym subscription for a while|Put my plan on hold|"
        "Suspend my membership temporarily",
    ),
    F(
        "gym",
        "Can I transfer my membership to someone else?|Give my gym plan to a friend|Is the membership transferable?|"
        "Hand over my contract to another person",
    ),
    F("gym", "What are your opening hours?|When is the gym open?|What time can I come in to work out?|Hours?"),
    F("gym", "How much is a personal trainer?|What do one-on-one sessions cost?|PT price?|Rate for private coaching?"),
    F(
        "gym",
        "How do I book a session with a personal trainer?|Schedule one-on-one coaching|Reserve time with a PT|"
        "Set up a private workout with a coach",
    ),
    F(
        "gym",
        "How do I book a class?|Where do I sign up for group workouts?|Group class reservation?|"
        "Reserve a place in a group session",
    ),
    F(
        "gym",
        "How much is a membership?|What does it cost to be a member?|Membership price?|"
        "How much do you charge for gym access?",
    ),
    # streaming subscription
    F(
        "streaming",
        "Can I download shows to watch offline?|Is there a way to view content without internet?|Offline viewing?|"
        "Store films on my device to watch without a connection",
    ),
    F(
        "streaming",
        "How many devices can stream at the same time?|Simultaneous streams limit?|"
        "How many people can use my account at once?|Max number of screens playing together?",
    ),
    F(
        "streaming",
        "How do I add a profile?|Create a new viewer on my account|Set up another user profile|"
        "Make an extra space for someone in my household",
    ),
    F(
        "streaming",
        "How do I delete a profile?|Get rid of one of the viewers on my account|Remove a user profile|"
        "Erase someone's space on my account",
    ),
    F(
        "streaming",
        "How do I turn on subtitles?|Show captions on screen|Enable closed captions|"
        "Where's the setting for on-screen text of dialogue?",
    ),
    F(
        "streaming",
        "How do I change the subtitle language?|Show captions in another language|"
        "Switch the on-screen text to a different tongue|Pick a different language for closed captions",
    ),
    F(
        "streaming",
        "How do I change the audio language?|Hear the show in a different language|Pick another soundtrack language|"
        "Switch the spoken track to a different tongue",
    ),
    F(
        "streaming",
        "Is there a free trial?|Can I try the service without paying?|Test it out at no cost first?|"
        "Is a trial period available?",
    ),
]
