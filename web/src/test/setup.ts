import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

// A page loaded lazily (the flow builder) is transformed on first use: on a loaded machine that
// takes longer than Testing Library's default second.
configure({ asyncUtilTimeout: 5_000 });

afterEach(() => cleanup());
