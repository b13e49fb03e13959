"""Semantic cache verification guards, and the eval that calibrates them on labelled pairs."""

from __future__ import annotations

from app.cache.guards import GUARDS, conflict

# --- negation -------------------------------------------------------------------------------------------------


def test_a_negation_only_in_one_query_is_a_conflict():
    assert conflict("Cancel my order 1234", "Don't cancel my order 1234") == "negation: 'don't' only in the query"


def test_the_same_negation_in_both_is_no_conflict():
    assert conflict("Can't log in", "unable to sign in") is None
    assert conflict("My refund hasn't arrived yet", "I still haven't received my refund") is None


def test_a_negating_prefix_is_a_conflict():
    assert conflict("Can I return used items?", "Can I return unused items?") == "negation: 'used' vs 'unused'"


def test_a_rhetorical_negative_question_is_no_conflict():
    assert conflict("Is Paris the capital of France?", "Isn't Paris the capital of France?") is None


def test_or_not_and_the_number_sign_are_not_negations():
    assert conflict("Is shipping free or not?", "Is shipping free?") is None
    assert conflict("Refund order No. 5521", "Refund order 5521") is None


# --- numbers, dates, times ------------------------------------------------------------------------------------


def test_different_order_numbers_conflict():
    assert conflict("Where is order 1234?", "Where is order 1243?") == "numbers: 1234 vs 1243"


def test_the_same_number_written_differently_is_no_conflict():
    assert conflict("Where is order #1,000?", "Can you track order 1000 for me?") is None
    assert conflict("I need 2 adapters", "I need two adapters") is None
    assert conflict("Order 6610 was charged twice", "I was charged two times for order 6610") is None


def test_different_weekdays_conflict():
    assert conflict("Are you open on Sunday?", "Are you open on Monday?") == "dates: sunday vs monday"


def test_the_same_date_written_differently_is_no_conflict():
    assert conflict("Deliver order 3021 on March 3rd", "Can order 3021 arrive on 3 March?") is None
    assert conflict("Are you open at 8:00 am on Monday?", "Do you open at 8am Mondays?") is None


def test_march_and_may_as_words_are_not_months():
    assert conflict("Hong Kong set for democracy march", "Hong Kong set for huge democracy rally") is None
    assert conflict("Which paths may hikers use?", "Which paths can hikers use?") is None
    assert conflict("Are you open in March?", "Are you open in May?") == "dates: march vs may"


def test_different_times_of_day_conflict():
    assert conflict("Can I pick up at 5pm?", "Can I pick up at 5am?") == "dates: 17:00 vs 05:00"
    assert conflict("What time do you close today?", "What time do you close tomorrow?") == "dates: today vs tomorrow"


# --- names and units ------------------------------------------------------------------------------------------


def test_different_cities_conflict():
    assert conflict("Ship to Paris", "Ship to Berlin") == "entities: Paris vs Berlin"


def test_a_name_in_lower_case_is_still_the_same_name():
    assert conflict("capital of japan?", "What is the capital city of Japan?") is None


def test_a_paraphrase_with_the_same_entities_passes():
    assert conflict("Do you have a store in Chicago?", "Is there a Chicago location?") is None
    assert (
        conflict(
            "Send the invoice for order 2201 to billing@acme.com", "Email order 2201's invoice to billing@acme.com"
        )
        is None
    )


def test_different_email_addresses_conflict():
    reason = conflict("Send the invoice to bob@example.com", "Send the invoice to rob@example.com")
    assert reason == "entities: bob@example.com vs rob@example.com"


def test_capitals_in_a_title_case_text_are_not_names():
    assert conflict("How Do I Reset My Password", "how can I reset my password?") is None


def test_different_currencies_conflict():
    assert conflict("Can I pay in euros?", "Can I pay in dollars?") == "units: euro vs dollar"


# --- opposites, order, question, substitution ------------------------------------------------------------------


def test_opposite_verbs_conflict():
    assert conflict("How do I add an item to my cart?", "How do I remove an item from my cart?") == (
        "opposites: add vs remove"
    )


def test_least_expensive_is_not_read_as_expensive():
    assert conflict("What's the least expensive laptop?", "What's the cheapest laptop?") is None
    assert conflict("What's the cheapest laptop?", "What's the most expensive laptop?") == (
        "opposites: cheapest vs most expensive"
    )


def test_the_same_terms_in_the_opposite_direction_conflict():
    reason = conflict("How do I convert Celsius to Fahrenheit?", "How do I convert Fahrenheit to Celsius?")
    assert reason is not None and reason.startswith("order: ")


def test_questions_after_different_kinds_of_answer_conflict():
    assert conflict("Who invented the telephone?", "When was the telephone invented?") == "question: who vs time"


def test_an_open_question_matches_a_specific_one():
    assert conflict("What are your opening hours?", "When are you open?") is None


def test_one_swapped_content_word_is_a_conflict():
    assert conflict("What's the boiling point of water?", "What's the freezing point of water?") == (
        "substitution: boiling vs freezing"
    )


def test_a_misspelt_word_is_not_a_swap():
    assert conflict("how do i retrun an item", "How do I return an item?") is None


def test_an_inflected_word_is_not_a_swap():
    assert conflict("A man practicing boxing", "A man practices boxing") is None
    assert conflict("A woman slicing bread", "A woman slices bread") is None
    assert conflict("How much does the box cost?", "How much do the boxes cost?") is None
    assert conflict("Can I ship it by boat?", "Can I ship it by train?") == "substitution: boat vs train"


def test_conflict_runs_only_the_guards_it_is_given():
    names = [name for name, _ in GUARDS]
    assert names[:4] == ["negation", "numbers", "dates", "entities"]
    without_numbers = [(name, guard) for name, guard in GUARDS if name != "numbers"]
    assert conflict("Where is order 1234?", "Where is order 1243?", without_numbers) is None
