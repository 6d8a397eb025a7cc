// Declarations of ferry-sync/devtools.
import type { Ferry } from './index.js';

/** The <ferry-inspector> element: set `ferry`; removing the element stops its subscriptions. */
export declare class FerryInspectorElement extends HTMLElement {
  ferry: Ferry<any> | null;
  /** Redraws from a fresh `ferry.inspect()`. */
  render(): void;
}

/** Adds the inspector panel for `ferry` to `parent` (default: the page's body); returns it. */
export declare function openInspector(ferry: Ferry<any>, parent?: ParentNode): FerryInspectorElement;
