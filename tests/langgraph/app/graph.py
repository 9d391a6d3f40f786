"""Graphs served by the test LangGraph API servers: no LLM, a deterministic fake model.

``agent``: the model node answers ``weather <city>,<city>…`` with one tool call per
city, one after the other, then a summary; anything else with an echo. ``tools`` runs the
tool calls. ``echo`` (only on the source server): one node that echoes.
"""

from __future__ import annotations

from typing import Annotated, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _usage(messages: list[AnyMessage]) -> dict[str, int]:
    return {"input_tokens": len(messages), "output_tokens": 3, "total_tokens": len(messages) + 3}


def model(state: State) -> dict:
    """``weather A,B`` asks for one tool call per city, one at a time, then sums up."""
    messages = state["messages"]
    asked = next(message for message in reversed(messages) if isinstance(message, HumanMessage))
    text = asked.content if isinstance(asked.content, str) else str(asked.content)
    meta = {"model_name": "fake-model"}
    usage = _usage(messages)
    if not text.startswith("weather "):
        return {"messages": [AIMessage(f"echo: {text}", usage_metadata=usage, response_metadata=meta)]}
    cities = [city.strip() for city in text[8:].split(",")]
    answers = [
        message.content for message in messages[messages.index(asked) :] if isinstance(message, ToolMessage)
    ]
    if len(answers) < len(cities):
        call = {"name": "get_weather", "args": {"city": cities[len(answers)]}, "id": f"call_{len(messages)}"}
        reply = AIMessage("", tool_calls=[call], usage_metadata=usage, response_metadata=meta)
    else:
        reply = AIMessage("Summary: " + "; ".join(answers), usage_metadata=usage, response_metadata=meta)
    return {"messages": [reply]}


def tools(state: State) -> dict:
    calls = state["messages"][-1].tool_calls
    return {
        "messages": [
            ToolMessage(f"sunny in {call['args']['city']} ☀", tool_call_id=call["id"], name=call["name"])
            for call in calls
        ]
    }


def route(state: State) -> str:
    return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END


agent_builder = StateGraph(State)
agent_builder.add_node("agent", model)
agent_builder.add_node("tools", tools)
agent_builder.add_edge(START, "agent")
agent_builder.add_conditional_edges("agent", route, ["tools", END])
agent_builder.add_edge("tools", "agent")
agent = agent_builder.compile()


def echo_node(state: State) -> dict:
    return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}


echo_builder = StateGraph(State)
echo_builder.add_node("echo", echo_node)
echo_builder.add_edge(START, "echo")
echo_builder.add_edge("echo", END)
echo = echo_builder.compile()


# ``lite`` on the target: the same graph id as the source's tool graph, but no ``tools``
# node, so the target refuses a history that ran it (and the sink falls back).
lite_builder = StateGraph(State)
lite_builder.add_node("agent", model)
lite_builder.add_edge(START, "agent")
lite_builder.add_edge("agent", END)
lite = lite_builder.compile()
