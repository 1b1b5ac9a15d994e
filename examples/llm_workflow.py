"""A research agent calling an OpenAI-compatible provider under backpressure.

plan -> research every sub-question and define every key term in parallel -> summarize.

The two parallel groups share what belongs to the provider: one ``RateLimit`` (the provider's
requests per second for this API key) and one ``CircuitBreaker``. Retries wait at least as long
as the provider's ``Retry-After`` asks, and the research group finds the provider's concurrency
by itself with an ``AdaptiveLimit``.

The provider here is ``rh_parallel.provider_double``: a local OpenAI-compatible server that
takes 4 requests at once and 40 a second, answering 429 with ``Retry-After`` above that. The
example starts it itself; its answers are canned, the calls and the 429s are real HTTP through
the ``openai`` SDK.

    pip install 'rh-parallel[llm]'
    python examples/llm_workflow.py
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
from pydantic import BaseModel

from rh_parallel import (
    LLM,
    AdaptiveLimit,
    CircuitBreaker,
    EventBus,
    ExecutionEvent,
    ExecutionState,
    ParallelEventPrinter,
    RateLimit,
    RetryPolicy,
)
from rh_parallel.provider_double import ProviderDouble, serve

MODEL = "gpt-4o-mini"
QUESTION = "Should a mid-sized city invest in grid-scale battery storage?"


# -- the provider's canned answers (a real model would write these) -----------------------


def canned_reply(request: dict[str, Any]) -> str:
    system = request["messages"][0]["content"]
    prompt = request["messages"][-1]["content"]
    if system.startswith("Plan"):
        aspects = ["cost per MWh", "lifetime", "alternatives to lithium-ion", "peak shaving"]
        aspects += ["incentives", "fire safety", "financing", "rooftop solar", "tariffs"]
        aspects += ["land and permits", "recycling", "grid services revenue"]
        questions = [f"What do we know about {aspect}" for aspect in aspects]
        terms = ["peak shaving", "round-trip efficiency", "capacity market", "depth of discharge"]
        return "\n".join([*(f"Q: {q}?" for q in questions), *(f"T: {t}" for t in terms)])
    if system.startswith("Define"):
        return f"{prompt}: a term of the trade, defined in one sentence."
    if system.startswith("Answer"):
        return f"A short, sourced answer to: {prompt}"
    return f"Recommendation, from {prompt.count(chr(10)) + 1} findings: pilot 20 MWh first."


# -- the agent's LLM calls -----------------------------------------------------------------


class Prompt(BaseModel):
    system: str
    prompt: str


async def complete(data: Prompt, client: openai.AsyncOpenAI, state: object) -> str:
    """One chat completion. The SDK's own retries are off: rh-parallel retries, and knows
    which failures are 429s and how long the provider asked to wait."""
    completion = await client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": data.system},
            {"role": "user", "content": data.prompt},
        ],
    )
    return completion.choices[0].message.content or ""


def llm(name: str) -> ExecutionEvent:
    actor = LLM(name=name, model=MODEL, provider="openai", input_model=Prompt, handler=complete)
    return ExecutionEvent(actor=actor)


plan, research, define, summarize = (llm(n) for n in ("plan", "research", "define", "summarize"))


async def research_agent(client: openai.AsyncOpenAI, state: ExecutionState) -> str:
    """Plan, research and define in parallel, summarize: the summary."""
    planned = await plan(Prompt(system="Plan the research.", prompt=QUESTION), client, state)
    if not planned.ok:
        raise SystemExit(f"planning failed: {planned.error_message}")
    lines = str(planned.result).splitlines()
    questions = [line[3:] for line in lines if line.startswith("Q: ")]
    terms = [line[3:] for line in lines if line.startswith("T: ")]

    async def research_all() -> dict[str, Any]:
        async with state.parallel(name="research", max_workers=CONCURRENCY, **PROVIDER) as p:
            for n, question in enumerate(questions):
                p.add(f"q{n}", research(Prompt(system="Answer", prompt=question), client, state))
        return await p.gather_dict()

    async def define_all() -> dict[str, Any]:
        async with state.parallel(name="glossary", max_workers=2, **PROVIDER) as p:
            for term in terms:
                p.add(term, define(Prompt(system="Define", prompt=term), client, state))
        return await p.gather_dict()

    answers, glossary = await asyncio.gather(research_all(), define_all())
    missing = [name for name, r in {**answers, **glossary}.items() if not r.ok]
    if missing:
        print(f"not answered: {', '.join(missing)}")
    findings = "\n".join(str(r.result) for r in answers.values() if r.ok)
    summary = await summarize(Prompt(system="Summarize", prompt=findings), client, state)
    return str(summary.result) if summary.ok else f"no summary: {summary.error_message}"


# One of each per provider (or API key), shared by every group that calls it:
RATE = RateLimit(30, per=1.0, name="openai")  # under the provider's 40 requests a second
BREAKER = CircuitBreaker("openai", failure_threshold=10, recovery_timeout=5)
PROVIDER: dict[str, Any] = {
    "rate_limit": RATE,
    "circuit_breaker": BREAKER,
    "retry": RetryPolicy(max_attempts=8, initial_delay=0.05, respect_retry_after=True),
}
# The research group finds how many calls the provider takes at once, starting above it:
CONCURRENCY = AdaptiveLimit(initial=8, min=1, max=16)


async def main(base_url: str) -> str:
    bus = EventBus()
    bus.subscribe(ParallelEventPrinter("progress"))
    state = ExecutionState(event_bus=bus, observers=[])
    async with openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
        try:
            return await research_agent(client, state)
        finally:
            await bus.aclose()  # everything printed


if __name__ == "__main__":
    provider = ProviderDouble(
        max_concurrent=4, rate=40, per=1.0, latency=0.2, retry_after=0.5, reply=canned_reply
    )
    with serve(provider) as url:
        answer = asyncio.run(main(url))
    print(f"summary: {answer}")
    print(
        f"provider saw {provider.count()} requests: {provider.count(200)} answered, "
        f"{provider.count(429)} refused with 429 (at most {provider.peak_in_flight} at once)"
    )
    print(f"research concurrency: started at 8, settled at {CONCURRENCY.limit}")
    print(f"breaker {BREAKER.name!r}: {BREAKER.state.value}")
