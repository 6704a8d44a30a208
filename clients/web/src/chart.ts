/** One metric chart (uPlot on a canvas): step on x, one or two series on y. Redraws are batched by
 * the Monitor's frame loop; the `onDraw` hook is where the page records when points became visible. */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { h } from "./dom";
import { metric } from "./format";

export interface ChartSeries { label: string; color: string; dash?: number[] }

export class MetricChart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private resize: ResizeObserver;

  constructor(readonly title: string, private series: ChartSeries[], private onDraw: () => void = () => {}) {
    const box = h("div", { class: "chart-box" });
    this.root = h("figure", { class: "chart", "data-chart": title }, h("figcaption", null, title), box);
    this.resize = new ResizeObserver(() => this.fit(box));
    this.resize.observe(box);
  }

  private fit(box: HTMLElement): void {
    const width = Math.max(200, Math.floor(box.clientWidth));
    if (!this.plot) this.create(box, width);
    else if (this.plot.width !== width) this.plot.setSize({ width, height: 180 });
  }

  private create(box: HTMLElement, width: number): void {
    this.plot = new uPlot({
      width, height: 180, legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: false } },
      axes: [{ label: "step", size: 30, labelSize: 14 },
             { size: 68, values: (_u, splits) => splits.map((v) => metric(v, 3)) }],
      series: [{ label: "step" }, ...this.series.map((s) => ({
        label: s.label, stroke: s.color, width: 1.5, dash: s.dash, spanGaps: true,
        points: { show: false }, value: (_u: uPlot, v: number | null) => metric(v),
      }))],
      hooks: { draw: [() => this.onDraw()] },
    }, this.pending ?? [[], ...this.series.map(() => [])], box);
    this.pending = null;
  }

  private pending: uPlot.AlignedData | null = null;

  /** New data: same column arrays, longer (uPlot copies nothing; the arrays are shared). */
  setData(x: (number | null)[], ys: (number | null)[][]): void {
    const data = [x, ...ys] as uPlot.AlignedData;
    if (this.plot) this.plot.setData(data);
    else this.pending = data;
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
  }
}
