// The side panel: the selected step's settings as a form (builder/fields.ts), where its exits
// lead (the keyboard's way to connect), make it the entry, delete it.
import { useState } from "react";

import type { FlowNode } from "../api/types";
import { FieldError } from "../components/FieldError";
import { type FieldSpec, fieldsOf, getField, setField } from "./fields";
import { exitsOf, targetOf } from "./graph";
import { TYPE_LABELS } from "./NodeCard";

interface Props {
  node: FlowNode;
  problems: Record<string, string>;
  nodeIds: string[];
  isEntry: boolean;
  readOnly: boolean;
  onChange: (node: FlowNode) => void;
  onConnect: (handle: string, target: string | null) => void;
  onMakeEntry: () => void;
  onDelete: () => void;
  onClose: () => void;
}

const slug = (text: string) => text.replace(/[^A-Za-z0-9_-]/g, "-");

function JsonField({ spec, value, inputId, describedBy, invalid, disabled, onChange }: {
  spec: FieldSpec;
  value: unknown;
  inputId: string;
  describedBy: string | undefined;
  invalid: boolean;
  disabled: boolean;
  onChange: (value: unknown) => void;
}) {
  const [text, setText] = useState(() => JSON.stringify(value ?? {}, null, 2));
  const [problem, setProblem] = useState<string | null>(null);
  return (
    <>
      <textarea
        id={inputId}
        rows={Math.min(12, text.split("\n").length + 1)}
        value={text}
        disabled={disabled}
        aria-invalid={invalid || problem !== null}
        aria-describedby={describedBy}
        spellCheck={false}
        onChange={(e) => {
          setText(e.target.value);
          try {
            const parsed: unknown = JSON.parse(e.target.value);
            if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
            setProblem(null);
            onChange(parsed);
          } catch {
            setProblem(`${spec.label}: expected a JSON object`);
          }
        }}
      />
      <FieldError id={`${inputId}-parse`} message={problem} />
    </>
  );
}

function Field({ spec, node, problem, disabled, onChange }: {
  spec: FieldSpec;
  node: FlowNode;
  problem: string | undefined;
  disabled: boolean;
  onChange: (node: FlowNode) => void;
}) {
  const inputId = `field-${slug(node.id)}-${slug(spec.name || "node")}`;
  const errorId = `${inputId}-error`;
  const hintId = `${inputId}-hint`;
  const describedBy = [spec.hint ? hintId : null, problem ? errorId : null].filter(Boolean).join(" ") || undefined;
  const value = getField(node, spec.name);
  const set = (v: unknown) => onChange(setField(node, spec.name, v));
  let control;
  if (spec.kind === "select") {
    control = (
      <select id={inputId} value={String(value ?? "")} disabled={disabled} aria-invalid={!!problem} aria-describedby={describedBy} onChange={(e) => set(e.target.value)}>
        {spec.options?.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (spec.kind === "json") {
    control = <JsonField spec={spec} value={value} inputId={inputId} describedBy={describedBy} invalid={!!problem} disabled={disabled} onChange={set} />;
  } else if (spec.kind === "percentages") {
    const branches = Array.isArray(value) ? (value as Record<string, unknown>[]) : [];
    control = (
      <fieldset className="percentages" aria-describedby={describedBy} id={inputId}>
        <legend className="visually-hidden">{spec.label}</legend>
        {branches.map((b, i) => {
          const letter = String.fromCharCode(65 + i);
          return (
            <label key={i} className="percent">
              <span>Branch {letter} %</span>
              <input
                type="number"
                min={1}
                max={100}
                step={1}
                value={typeof b.percent === "number" ? b.percent : ""}
                disabled={disabled}
                aria-invalid={!!problem}
                onChange={(e) => set(branches.map((x, n) => (n === i ? { ...x, percent: e.target.value === "" ? undefined : Number(e.target.value) } : x)))}
              />
            </label>
          );
        })}
        {!disabled && (
          <div className="percent-actions">
            <button type="button" className="button-quiet" disabled={branches.length >= 10} onClick={() => set([...branches, { percent: 0 }])}>
              Add branch
            </button>
            <button type="button" className="button-quiet" disabled={branches.length <= 2} onClick={() => set(branches.slice(0, -1))}>
              Remove last branch
            </button>
          </div>
        )}
      </fieldset>
    );
  } else {
    control = (
      <input
        id={inputId}
        type={spec.kind === "url" ? "url" : "text"}
        value={typeof value === "string" ? value : ""}
        disabled={disabled}
        spellCheck={false}
        aria-invalid={!!problem}
        aria-describedby={describedBy}
        onChange={(e) => set(e.target.value)}
      />
    );
  }
  return (
    <div className="field">
      {spec.kind === "percentages" ? <span className="field-label" id={`${inputId}-label`}>{spec.label}</span> : <label htmlFor={inputId}>{spec.label}</label>}
      {control}
      {spec.hint && (
        <p className="hint" id={hintId}>
          {spec.hint}
        </p>
      )}
      <FieldError id={errorId} message={problem ? `${spec.name || "node"}: ${problem}` : null} />
    </div>
  );
}

export function NodeForm({ node, problems, nodeIds, isEntry, readOnly, onChange, onConnect, onMakeEntry, onDelete, onClose }: Props) {
  const specs = fieldsOf(node);
  const shown = new Set(specs.map((s) => s.name));
  const exits = exitsOf(node);
  const exitNames = new Set(exits.map((e) => e.handle.replace(/^branches\.(\d+)$/, "branches[$1].next")));
  const others = Object.entries(problems).filter(([field]) => !shown.has(field) && !exitNames.has(field));
  return (
    <section className="node-form" aria-labelledby="node-form-title" data-node-id={node.id}>
      <div className="node-form-head">
        <h2 id="node-form-title">
          {TYPE_LABELS[node.type] ?? node.type} <code>{node.id}</code>
        </h2>
        <button type="button" className="button-quiet" onClick={onClose} aria-label={`Close the settings of ${node.id}`}>
          Close
        </button>
      </div>
      {isEntry && <p className="muted">The entry step: every run starts here.</p>}
      {specs.map((spec) => (
        <Field key={`${node.id}:${spec.name}`} spec={spec} node={node} problem={problems[spec.name]} disabled={readOnly} onChange={onChange} />
      ))}
      {exits.length > 0 && (
        <fieldset className="exits">
          <legend>Then</legend>
          {exits.map((exit) => {
            const selectId = `exit-${slug(node.id)}-${slug(exit.handle)}`;
            const path = exit.handle.replace(/^branches\.(\d+)$/, "branches[$1].next");
            const problem = problems[path] ?? problems[exit.handle];
            return (
              <div className="field" key={exit.handle}>
                <label htmlFor={selectId}>After “{exit.label}”</label>
                <select
                  id={selectId}
                  value={targetOf(node, exit.handle) ?? ""}
                  disabled={readOnly}
                  aria-invalid={!!problem}
                  aria-describedby={problem ? `${selectId}-error` : undefined}
                  onChange={(e) => onConnect(exit.handle, e.target.value || null)}
                >
                  <option value="">— not connected —</option>
                  {nodeIds
                    .filter((id) => id !== node.id)
                    .map((id) => (
                      <option key={id} value={id}>
                        {id}
                      </option>
                    ))}
                </select>
                <FieldError id={`${selectId}-error`} message={problem ? `${path}: ${problem}` : null} />
              </div>
            );
          })}
        </fieldset>
      )}
      {others.length > 0 && (
        <ul className="problems" aria-label="Other problems with this step">
          {others.map(([field, message]) => (
            <li key={field} className="field-error">
              {field}: {message}
            </li>
          ))}
        </ul>
      )}
      {!readOnly && (
        <div className="actions">
          {!isEntry && (
            <button type="button" className="button-quiet" onClick={onMakeEntry}>
              Make entry step
            </button>
          )}
          <button type="button" className="button-danger" onClick={onDelete}>
            Delete step
          </button>
        </div>
      )}
    </section>
  );
}
