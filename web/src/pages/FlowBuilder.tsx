// The flow builder (/app/flows/:id): the flow's steps on a canvas (@xyflow/react), a palette to add
// steps (click or drag), exits connected by dragging, the selected step's form, save (a new version
// through POST /api/v1/flows), publish / pause, export; live counts per step. Every edit is kept
// in localStorage until saved (builder/draft.ts).
import "@xyflow/react/dist/style.css";

import {
  applyNodeChanges,
  Background,
  type Connection,
  Controls,
  type Edge,
  type EdgeChange,
  MarkerType,
  type Node,
  type NodeChange,
  ReactFlow,
  ReactFlowProvider,
  useReactFlow,
} from "@xyflow/react";
import { type DragEvent, type FormEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";

import { ApiError } from "../api/client";
import { useDryRun, useFlow, useFlowStatus, useNodeCounts, useSaveFlow, useSession } from "../api/hooks";
import type { DryRun as DryRunAnswer, FlowDefinition, FlowDetail, FlowNode } from "../api/types";
import { clearDraft, loadDraft, saveDraft } from "../builder/draft";
import { validateNode } from "../builder/fields";
import {
  connect,
  deleteNode,
  edgeEnds,
  edgesOf,
  errorsByNode,
  LAYER_GAP,
  layout,
  newNode,
  PALETTE,
  pathOf,
  type Point,
  replaceNode,
} from "../builder/graph";
import { CanvasContext, NodeCard } from "../builder/NodeCard";
import { NodeForm } from "../builder/NodeForm";
import { ErrorBox, FieldError } from "../components/FieldError";
import { StatusBadge } from "../components/StatusBadge";
import { formatCount } from "../format";

const NODE_TYPES = { step: NodeCard };
const DRAG_TYPE = "application/x-shopflow-node";
const MIN_READABLE_ZOOM = 0.75;

function toCanvas(definition: FlowDefinition, positions: Record<string, Point>): Node[] {
  return definition.nodes.map((n) => ({
    id: n.id,
    type: "step",
    position: positions[n.id] ?? { x: 0, y: 0 },
    data: {},
    ariaLabel: `Step ${n.id} (${n.type})`,
  }));
}

function positionsOf(nodes: Node[]): Record<string, Point> {
  return Object.fromEntries(nodes.map((n) => [n.id, { x: Math.round(n.position.x), y: Math.round(n.position.y) }]));
}

function download(definition: FlowDefinition) {
  const blob = new Blob([JSON.stringify(definition, null, 2) + "\n"], { type: "application/json" });
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${definition.id}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1_000);
}

/** Dry run: the path one profile would take through the saved flow now, drawn on the canvas. */
function DryRun({ flowId, dirty, onResult }: { flowId: number; dirty: boolean; onResult: (run: DryRunAnswer | null) => void }) {
  const run = useDryRun(flowId);
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = text.trim();
    if (!/^[1-9]\d{0,17}$/.test(value)) {
      setProblem(`profile_id: ${JSON.stringify(value)} is not a profile id (a whole number from 1)`);
      return;
    }
    setProblem(null);
    run.mutate(Number(value), {
      onSuccess: (answer) => onResult(answer),
      onError: (error) => {
        onResult(null);
        setProblem(error.message);
      },
    });
  };
  return (
    <section className="dry-run" aria-labelledby="dry-run-title">
      <h2 id="dry-run-title">Dry run</h2>
      <form onSubmit={submit} noValidate>
        <div className="field">
          <label htmlFor="dry-run-profile">Profile id</label>
          <div className="inline-form">
            <input
              id="dry-run-profile"
              inputMode="numeric"
              value={text}
              onChange={(e) => setText(e.target.value)}
              aria-invalid={problem !== null}
              aria-describedby={problem ? "dry-run-error" : "dry-run-hint"}
            />
            <button type="submit" className="button-secondary" disabled={run.isPending}>
              {run.isPending ? "Running…" : "Run"}
            </button>
          </div>
          <p className="hint" id="dry-run-hint">
            The path this profile would take now{dirty ? ", through the saved version (not your unsaved changes)" : ""}. Nothing is sent.
          </p>
          <FieldError id="dry-run-error" message={problem} />
        </div>
      </form>
      {run.data && !problem && (
        <div className="dry-run-result" role="status">
          <p>
            <strong>{run.data.entered ? "Would enter" : "Would not enter"}</strong> (v{run.data.version}): {run.data.outcome}
          </p>
          <ol className="dry-run-path">
            {run.data.path.map((stop, i) => (
              <li key={i}>
                <span className="dry-run-kind">{stop.kind}</span> {stop.node_id && <code>{stop.node_id}</code>} {stop.detail}
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  );
}

interface Edit {
  definition: FlowDefinition;
  baseline: string;
  version: number;
  restoredAt: string | null;
}

function Builder({ flow }: { flow: FlowDetail }) {
  const { data: session } = useSession();
  const readOnly = !(session?.can_write ?? false);
  const counts = useNodeCounts(flow.id);
  const save = useSaveFlow(flow.id);
  const status = useFlowStatus(flow.id);
  const { screenToFlowPosition, fitView } = useReactFlow();

  const [edit, setEdit] = useState<Edit>(() => {
    const draft = loadDraft(flow.id);
    const baseline = JSON.stringify(flow.definition);
    if (draft && JSON.stringify(draft.definition) !== baseline) {
      return { definition: draft.definition, baseline, version: draft.version, restoredAt: draft.savedAt };
    }
    return { definition: flow.definition, baseline, version: flow.version, restoredAt: null };
  });
  const [nodes, setNodes] = useState<Node[]>(() => {
    const draft = loadDraft(flow.id);
    const auto = layout(edit.definition);
    return toCanvas(edit.definition, edit.restoredAt && draft ? { ...auto, ...draft.positions } : auto);
  });
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const [selectedEdges, setSelectedEdges] = useState<Set<string>>(new Set());
  const [serverProblems, setServerProblems] = useState<{ nodes: Record<string, Record<string, string>>; flow: string[] }>({ nodes: {}, flow: [] });
  const [notice, setNotice] = useState<string | null>(null);
  const [positionsTick, setPositionsTick] = useState(0);
  const canvasRef = useRef<HTMLDivElement>(null);
  const [dryRun, setDryRun] = useState<DryRunAnswer | null>(null);
  const path = useMemo(() => pathOf(dryRun?.path ?? []), [dryRun]);

  const definition = edit.definition;
  const dirty = JSON.stringify(definition) !== edit.baseline;

  // Keep the edit locally on every change; drop the copy once it equals what the server has.
  useEffect(() => {
    if (readOnly) return;
    if (dirty) saveDraft(flow.id, { version: edit.version, savedAt: new Date().toISOString(), definition, positions: positionsOf(nodes) });
    else clearDraft(flow.id);
    // Positions are written when a drag ends (positionsTick), not on every frame of it.
  }, [definition, dirty, positionsTick, flow.id, readOnly, edit.version]);

  const change = useCallback((next: (d: FlowDefinition) => FlowDefinition, touched?: string) => {
    setEdit((e) => ({ ...e, definition: next(e.definition) }));
    if (touched) {
      setServerProblems((p) => {
        if (!p.nodes[touched]) return p;
        const { [touched]: _gone, ...rest } = p.nodes;
        return { ...p, nodes: rest };
      });
    }
    setNotice(null);
  }, []);

  const problems = useMemo(() => {
    const out: Record<string, Record<string, string>> = {};
    for (const node of definition.nodes) {
      const mine = { ...validateNode(node), ...(serverProblems.nodes[node.id] ?? {}) };
      if (Object.keys(mine).length > 0) out[node.id] = mine;
    }
    return out;
  }, [definition, serverProblems]);

  const canvas = useMemo(
    () => ({
      byId: new Map(definition.nodes.map((n) => [n.id, n])),
      counts: new Map((counts.data?.nodes ?? []).map((c) => [c.node_id, c])),
      problems,
      entry: definition.entry,
      onPath: path.nodes,
    }),
    [definition, counts.data, problems, path],
  );

  const edges: Edge[] = useMemo(
    () =>
      edgesOf(definition).map((e) => ({
        ...e,
        selected: selectedEdges.has(e.id),
        animated: path.steps.has(`${e.source}>${e.target}`),
        className: path.steps.has(`${e.source}>${e.target}`) ? "on-path" : undefined,
        markerEnd: { type: MarkerType.ArrowClosed },
        ariaLabel: `From ${e.source}${e.label ? ` (${e.label})` : ""} to ${e.target}`,
      })),
    [definition, selectedEdges, path],
  );

  const addNode = useCallback(
    (type: string, at?: Point) => {
      if (readOnly) return;
      const node = newNode(type, definition.nodes.map((n) => n.id));
      const below = nodes.find((n) => n.id === selectedId);
      const lowest = nodes.reduce((y, n) => Math.max(y, n.position.y), 0);
      const position = at ?? (below ? { x: below.position.x + 40, y: below.position.y + LAYER_GAP } : { x: 0, y: lowest + LAYER_GAP });
      change((d) => ({ ...d, nodes: [...d.nodes, node], entry: d.entry || node.id }));
      setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), { ...toCanvas({ ...definition, nodes: [node] }, { [node.id]: position })[0]!, selected: true }]);
      setSelectedId(node.id);
    },
    [change, definition, nodes, readOnly, selectedId],
  );

  const removeNodes = useCallback(
    (ids: string[]) => {
      change((d) => ids.reduce(deleteNode, d));
      setNodes((ns) => ns.filter((n) => !ids.includes(n.id)));
      setSelectedId((s) => (s && ids.includes(s) ? null : s));
    },
    [change],
  );

  const onNodesChange = useCallback(
    (changes: NodeChange[]) => {
      const removed = changes.flatMap((c) => (c.type === "remove" ? [c.id] : []));
      const kept = changes.filter((c) => c.type !== "remove");
      setNodes((ns) => applyNodeChanges(kept, ns));
      if (removed.length > 0 && !readOnly) removeNodes(removed);
    },
    [readOnly, removeNodes],
  );

  const onEdgesChange = useCallback(
    (changes: EdgeChange[]) => {
      setSelectedEdges((s) => {
        const next = new Set(s);
        for (const c of changes) if (c.type === "select") c.selected ? next.add(c.id) : next.delete(c.id);
        return next;
      });
      const removed = changes.flatMap((c) => (c.type === "remove" ? [c.id] : []));
      if (removed.length > 0 && !readOnly) {
        change((d) =>
          removed.reduce((acc, id) => {
            const { source, handle } = edgeEnds(id);
            return connect(acc, source, handle, null);
          }, d),
        );
      }
    },
    [change, readOnly],
  );

  const onConnect = useCallback(
    (c: Connection) => {
      if (readOnly || !c.source || !c.target || !c.sourceHandle) return;
      change((d) => connect(d, c.source, c.sourceHandle as string, c.target), c.source);
    },
    [change, readOnly],
  );

  const onDrop = useCallback(
    (event: DragEvent) => {
      const type = event.dataTransfer.getData(DRAG_TYPE);
      if (!type) return;
      event.preventDefault();
      addNode(type, screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [addNode, screenToFlowPosition],
  );

  const onSave = () => {
    const clientProblems = Object.keys(problems).filter((id) => !serverProblems.nodes[id]);
    if (clientProblems.length > 0) {
      setNotice(null);
      setServerProblems((p) => ({ ...p, flow: [`Not saved: fix the steps marked in red first (${clientProblems.join(", ")})`] }));
      return;
    }
    save.mutate(definition, {
      onSuccess: (saved) => {
        clearDraft(flow.id);
        setEdit((e) => ({ ...e, baseline: JSON.stringify(e.definition), version: saved.version, restoredAt: null }));
        setServerProblems({ nodes: {}, flow: [] });
        setNotice(`Saved as version ${saved.version}.`);
      },
      onError: (error) => {
        const list = error instanceof ApiError && Array.isArray(error.body.errors) ? (error.body.errors as string[]) : [error.message];
        const mapped = errorsByNode(definition, list);
        setServerProblems(mapped);
        const first = Object.keys(mapped.nodes)[0];
        if (first) {
          setSelectedId(first);
          setNodes((ns) => ns.map((n) => ({ ...n, selected: n.id === first })));
        }
      },
    });
  };

  const selected = definition.nodes.find((n) => n.id === selectedId) ?? null;
  const current = status.data?.status ?? flow.status;
  const version = save.data?.version ?? flow.version;
  const problemCount = Object.keys(problems).length;

  return (
    <div className="builder">
      <div className="builder-bar">
        <div className="builder-title">
          <Link to="/flows" className="button-quiet">
            ← Flows
          </Link>
          <h1 id="builder-title">{definition.name}</h1>
          <StatusBadge status={current} />
          <span className="muted">
            {flow.key} · v{version}
            {dirty && " · unsaved changes"}
          </span>
          <span className="entrants" data-testid="entrants">
            <strong>{formatCount(counts.data?.entrants)}</strong> {counts.data?.entrants === 1 ? "entrant" : "entrants"}
          </span>
        </div>
        <div className="actions" role="toolbar" aria-label="Flow actions">
          {!readOnly && (
            <button type="button" className="button-primary" onClick={onSave} disabled={save.isPending || !dirty}>
              {save.isPending ? "Saving…" : "Save"}
            </button>
          )}
          {!readOnly && current !== "live" && (
            <button
              type="button"
              className="button-secondary"
              onClick={() => status.mutate("live", { onSuccess: () => setNotice("Published: the flow is live.") })}
              disabled={dirty || status.isPending}
              aria-describedby={dirty ? "publish-note" : undefined}
            >
              Publish
            </button>
          )}
          {!readOnly && current === "live" && (
            <button type="button" className="button-secondary" onClick={() => status.mutate("paused", { onSuccess: () => setNotice("Paused: no new runs start.") })} disabled={status.isPending}>
              Pause
            </button>
          )}
          <button
            type="button"
            className="button-secondary"
            onClick={() => {
              const placed = layout(definition);
              setNodes((ns) => ns.map((n) => ({ ...n, position: placed[n.id] ?? n.position })));
              setPositionsTick((t) => t + 1);
              window.requestAnimationFrame(() => void fitView({ maxZoom: 1, padding: 0.1 }));
            }}
          >
            Arrange steps
          </button>
          <button type="button" className="button-secondary" onClick={() => download(definition)}>
            Export JSON
          </button>
        </div>
      </div>
      {dirty && !readOnly && (
        <p id="publish-note" className="visually-hidden">
          Save your changes before publishing.
        </p>
      )}
      <div aria-live="polite">
        {edit.restoredAt && dirty && (
          <div className="notice" role="status">
            Restored your unsaved changes from {new Date(edit.restoredAt).toLocaleString()}.{" "}
            {edit.version < flow.version && (
              <>
                They began from version {edit.version}; the flow has been saved as version {flow.version} since, and
                saving makes yours the newest.{" "}
              </>
            )}
            <button
              type="button"
              className="button-quiet"
              onClick={() => {
                clearDraft(flow.id);
                setEdit({ definition: flow.definition, baseline: JSON.stringify(flow.definition), version: flow.version, restoredAt: null });
                setNodes(toCanvas(flow.definition, layout(flow.definition)));
                setServerProblems({ nodes: {}, flow: [] });
                setSelectedId(null);
              }}
            >
              Discard them
            </button>
          </div>
        )}
        {notice && (
          <div className="notice" role="status">
            {notice}
          </div>
        )}
      </div>
      {(serverProblems.flow.length > 0 || Object.keys(serverProblems.nodes).length > 0) && (
        <div className="error-box" role="alert">
          {Object.keys(serverProblems.nodes).length > 0 && (
            <p>
              Not saved: {Object.keys(serverProblems.nodes).length}{" "}
              {Object.keys(serverProblems.nodes).length === 1 ? "step has problems" : "steps have problems"}, marked on the canvas (
              {Object.keys(serverProblems.nodes).join(", ")}).
            </p>
          )}
          {serverProblems.flow.map((m) => (
            <p key={m}>{m}</p>
          ))}
        </div>
      )}
      <ErrorBox error={status.error} />
      <div className="builder-body">
        {!readOnly && (
          <aside className="palette" aria-label="Add a step">
            <h2>Add a step</h2>
            <p className="hint">Click, or drag onto the canvas.</p>
            {PALETTE.map((item) => (
              <button
                key={item.type}
                type="button"
                className={`palette-item palette-${item.type}`}
                draggable
                onDragStart={(e) => {
                  e.dataTransfer.setData(DRAG_TYPE, item.type);
                  e.dataTransfer.effectAllowed = "move";
                }}
                onClick={() => addNode(item.type)}
                aria-label={`Add ${item.label.toLowerCase()} step`}
              >
                {item.label}
              </button>
            ))}
          </aside>
        )}
        <div ref={canvasRef} className="canvas" aria-label="Flow canvas" role="region" onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
          <CanvasContext.Provider value={canvas}>
            <ReactFlow
              nodes={nodes}
              edges={edges}
              nodeTypes={NODE_TYPES}
              onNodesChange={onNodesChange}
              onEdgesChange={onEdgesChange}
              onConnect={onConnect}
              onSelectionChange={({ nodes: picked }) => setSelectedId((s) => (picked.length === 1 ? (picked[0]?.id ?? null) : picked.length === 0 ? null : s))}
              onNodeDragStop={() => setPositionsTick((t) => t + 1)}
              nodesConnectable={!readOnly}
              nodesDraggable={!readOnly}
              deleteKeyCode={readOnly ? null : ["Delete", "Backspace"]}
              onInit={(instance) => {
                // Fit the flow; a tall one would shrink past reading: show its top at a legible zoom.
                void instance.fitView({ maxZoom: 1, padding: 0.1 }).then(() => {
                  const box = canvasRef.current?.getBoundingClientRect();
                  const top = nodes.find((n) => n.id === definition.entry) ?? nodes[0];
                  if (box && top && instance.getZoom() < MIN_READABLE_ZOOM) {
                    const zoom = MIN_READABLE_ZOOM;
                    void instance.setViewport({ x: box.width / 2 - (top.position.x + 105) * zoom, y: 24 - top.position.y * zoom, zoom });
                  }
                });
              }}
              minZoom={0.1}
              onlyRenderVisibleElements={definition.nodes.length > 60}
              proOptions={{ hideAttribution: false }}
            >
              <Background gap={20} />
              <Controls showInteractive={false} />
            </ReactFlow>
          </CanvasContext.Provider>
        </div>
        <aside className="side-panel" aria-label="Step settings">
          {selected ? (
            <NodeForm
              node={selected}
              problems={problems[selected.id] ?? {}}
              nodeIds={definition.nodes.map((n) => n.id)}
              isEntry={definition.entry === selected.id}
              readOnly={readOnly}
              onChange={(node: FlowNode) => change((d) => replaceNode(d, node), node.id)}
              onConnect={(handle, target) => change((d) => connect(d, selected.id, handle, target), selected.id)}
              onMakeEntry={() => change((d) => ({ ...d, entry: selected.id }))}
              onDelete={() => removeNodes([selected.id])}
              onClose={() => {
                setSelectedId(null);
                setNodes((ns) => ns.map((n) => (n.selected ? { ...n, selected: false } : n)));
              }}
            />
          ) : (
            <div className="side-empty">
              {!readOnly && <DryRun flowId={flow.id} dirty={dirty} onResult={setDryRun} />}
              <h2>Steps</h2>
              <p className="muted">
                {definition.nodes.length} steps{problemCount > 0 ? `, ${problemCount} with problems` : ""}. Select one on the canvas (or below) to edit it.
              </p>
              <ul className="step-list">
                {definition.nodes.map((n) => (
                  <li key={n.id}>
                    <button
                      type="button"
                      className={`button-quiet${problems[n.id] ? " has-problems" : ""}`}
                      onClick={() => {
                        setSelectedId(n.id);
                        setNodes((ns) => ns.map((x) => ({ ...x, selected: x.id === n.id })));
                      }}
                    >
                      {n.id} <span className="muted">({n.type})</span>
                    </button>
                  </li>
                ))}
              </ul>
            </div>
          )}
        </aside>
      </div>
    </div>
  );
}

export function FlowBuilderPage() {
  const params = useParams();
  const id = Number(params.id);
  const flow = useFlow(Number.isInteger(id) && id > 0 ? id : 0);
  if (!Number.isInteger(id) || id <= 0) return <ErrorBox error={new Error(`flow_id: ${params.id} is not a flow id`)} />;
  if (flow.isPending) return <p className="loading">Loading flow…</p>;
  if (flow.isError) return <ErrorBox error={flow.error} />;
  return (
    <ReactFlowProvider>
      <Builder key={`${flow.data.id}`} flow={flow.data} />
    </ReactFlowProvider>
  );
}
