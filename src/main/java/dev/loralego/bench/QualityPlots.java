package dev.loralego.bench;

import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.title.LegendTitle;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.StatisticalBarRenderer;
import org.jfree.chart.renderer.xy.XYErrorRenderer;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.data.statistics.DefaultStatisticalCategoryDataset;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.Paint;
import java.awt.RenderingHints;
import java.awt.geom.Rectangle2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The PNG figures of the quality report, drawn headless with JFreeChart: methods as bars or lines, error bars = one
 * sample standard deviation over the seeds, one panel per regime or per score. Values far below zero (e.g. {@code cat}
 * counting shared skills several times) are cut at the axis floor; the report's tables have them.
 */
public final class QualityPlots {

    /** All methods: in-domain and OOD gain, bars per regime. */
    public static final String MAIN = "quality-methods.png";
    /** Gain against k for the rank-bounded methods, with k auto as a point at its mean chosen k. */
    public static final String K_SWEEP = "quality-k.png";
    /** LoRA-LEGO ablations. */
    public static final String ABLATIONS = "quality-ablations.png";
    /** Gain against the number of adapters merged. */
    public static final String ADAPTERS = "quality-adapters.png";

    private static final Paint[] PALETTE = {
            new Color(0x1f77b4), new Color(0xff7f0e), new Color(0x2ca02c), new Color(0xd62728), new Color(0x9467bd),
            new Color(0x8c564b), new Color(0xe377c2), new Color(0x7f7f7f), new Color(0xbcbd22), new Color(0x17becf)};
    private static final Font TITLE = new Font("DejaVu Sans", Font.BOLD, 20);
    private static final Font LABEL = new Font("DejaVu Sans", Font.PLAIN, 16);
    private static final Font TICK = new Font("DejaVu Sans", Font.PLAIN, 14);
    private static final double BAR_FLOOR = -0.5;
    private static final double LINE_FLOOR = -0.2;

    private QualityPlots() {
    }

    /**
     * Writes the four figures into {@code dir}.
     *
     * @return the written files
     */
    public static List<Path> write(QualityResults results, Path dir) throws IOException {
        Files.createDirectories(dir);
        List<Path> out = new ArrayList<>();
        List<MergeCase> main = results.cases(MergeCase.Section.MAIN);
        out.add(save(dir.resolve(MAIN), barFigure(results, main, "All methods, " + results.config().world().mergedTasks()
                + " adapters merged")));
        out.add(save(dir.resolve(K_SWEEP), kFigure(results, main)));
        List<MergeCase> abl = results.cases(MergeCase.Section.ABLATION);
        if (!abl.isEmpty()) {
            out.add(save(dir.resolve(ABLATIONS), barFigure(results, abl, "LoRA-LEGO ablations (svd, k = " + abl.get(0).k() + ")")));
        }
        List<MergeCase> counts = results.cases(MergeCase.Section.ADAPTERS);
        if (!counts.isEmpty()) out.add(save(dir.resolve(ADAPTERS), adaptersFigure(results, counts)));
        return out;
    }

    private static Path save(Path file, BufferedImage img) throws IOException {
        ImageIO.write(img, "png", file.toFile());
        return file;
    }

    static String rowLabel(MergeCase c) {
        if (c.k().equals(QualityBenchmark.EXACT)) return c.method();
        if (c.section() == MergeCase.Section.ABLATION) return c.method();
        return c.method() + "  k=" + c.k().replace("auto ", "auto, ");
    }

    /** Two horizontal bar panels (in-domain, OOD), one bar per regime per row. */
    private static BufferedImage barFigure(QualityResults results, List<MergeCase> rows, String title) {
        boolean anyOod = rows.stream().anyMatch(c -> Double.isFinite(results.outOfDomain(c, InitRegime.SHARED_INIT).mean()));
        JFreeChart in = barChart(results, rows, true, "in-domain gain (1 = own adapter, 0 = base layer)");
        JFreeChart ood = anyOod ? barChart(results, rows, false, "out-of-domain gain") : null;
        int panelH = Math.max(480, 170 + rows.size() * 2 * 19);
        int panelW = 900;
        List<JFreeChart> panels = new ArrayList<>();
        panels.add(in);
        if (ood != null) {
            ood.getCategoryPlot().getDomainAxis().setTickLabelsVisible(false);
            panels.add(ood);
        }
        int[] widths = ood == null ? new int[]{panelW + 250} : new int[]{panelW + 250, panelW - 250};
        return compose(title, panels, widths, panelH);
    }

    private static JFreeChart barChart(QualityResults results, List<MergeCase> rows, boolean inDomain, String axis) {
        DefaultStatisticalCategoryDataset data = new DefaultStatisticalCategoryDataset();
        double min = 0;
        for (MergeCase c : rows) {
            for (InitRegime g : InitRegime.values()) {
                QualityResults.Stat s = inDomain ? results.inDomain(c, g) : results.outOfDomain(c, g);
                data.add(Double.isFinite(s.mean()) ? s.mean() : null, Double.isFinite(s.sd()) ? s.sd() : null,
                        g.label(), rowLabel(c));
                if (Double.isFinite(s.mean())) min = Math.min(min, s.mean() - s.sd());
            }
        }
        CategoryAxis cat = new CategoryAxis();
        cat.setTickLabelFont(TICK);
        cat.setMaximumCategoryLabelWidthRatio(0.45f);
        cat.setCategoryMargin(0.25);
        NumberAxis val = new NumberAxis(min < BAR_FLOOR ? axis + "; bars cut at " + BAR_FLOOR + ", values in quality.md" : axis);
        val.setLabelFont(LABEL);
        val.setTickLabelFont(TICK);
        val.setRange(Math.max(min - 0.05, BAR_FLOOR), 1.1);
        StatisticalBarRenderer r = new StatisticalBarRenderer();
        r.setErrorIndicatorPaint(Color.BLACK);
        r.setItemMargin(0.0);
        r.setDrawBarOutline(false);
        r.setShadowVisible(false);
        for (int i = 0; i < InitRegime.values().length; i++) r.setSeriesPaint(i, PALETTE[i]);
        CategoryPlot plot = new CategoryPlot(data, cat, val, r);
        plot.setOrientation(PlotOrientation.HORIZONTAL);
        styleCategory(plot);
        plot.addRangeMarker(new ValueMarker(1.0, Color.DARK_GRAY, new BasicStroke(1.2f, BasicStroke.CAP_BUTT,
                BasicStroke.JOIN_MITER, 1f, new float[]{6f, 4f}, 0f)));
        plot.addRangeMarker(new ValueMarker(0.0, Color.BLACK, new BasicStroke(1f)));
        JFreeChart chart = new JFreeChart(inDomain ? "In-domain" : "Out-of-domain", LABEL, plot, true);
        chart.getLegend().setItemFont(LABEL);
        chart.getLegend().setPosition(RectangleEdge.TOP);
        return chart;
    }

    /** 2 × 2 panels: rows in-domain / OOD, columns regimes; lines over k, k auto as points. */
    private static BufferedImage kFigure(QualityResults results, List<MergeCase> main) {
        List<JFreeChart> panels = new ArrayList<>();
        for (boolean inDomain : new boolean[]{true, false}) {
            for (InitRegime g : InitRegime.values()) {
                XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
                Map<String, XYIntervalSeries> series = new LinkedHashMap<>();
                List<Boolean> lines = new ArrayList<>();
                for (MergeCase c : main) {
                    if (c.reference() || c.k().equals(QualityBenchmark.EXACT)) continue;
                    boolean auto = c.k().startsWith("auto");
                    String name = auto ? c.method() + " k " + c.k() : c.method();
                    XYIntervalSeries s = series.get(name);
                    if (s == null) {
                        s = new XYIntervalSeries(name);
                        series.put(name, s);
                        data.addSeries(s);
                        lines.add(!auto);
                    }
                    QualityResults.Stat y = inDomain ? results.inDomain(c, g) : results.outOfDomain(c, g);
                    QualityResults.Stat x = results.rank(c, g);
                    if (!Double.isFinite(y.mean())) continue;
                    double xs = auto ? x.sd() : 0;
                    s.add(x.mean(), x.mean() - xs, x.mean() + xs, y.mean(), y.mean() - y.sd(), y.mean() + y.sd());
                }
                XYErrorRenderer r = new XYErrorRenderer();
                r.setErrorPaint(Color.DARK_GRAY);
                r.setCapLength(6);
                for (int i = 0; i < lines.size(); i++) {
                    r.setSeriesPaint(i, PALETTE[i % PALETTE.length]);
                    r.setSeriesLinesVisible(i, lines.get(i));
                    r.setSeriesStroke(i, new BasicStroke(2.2f));
                    r.setSeriesShapesVisible(i, true);
                    if (!lines.get(i)) r.setSeriesShape(i, new java.awt.geom.Ellipse2D.Double(-7, -7, 14, 14));
                }
                NumberAxis x = new NumberAxis("k (merged rank)");
                x.setLabelFont(LABEL);
                x.setTickLabelFont(TICK);
                x.setAutoRangeIncludesZero(false);
                x.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
                NumberAxis y = new NumberAxis(inDomain ? "in-domain gain" : "out-of-domain gain");
                y.setLabelFont(LABEL);
                y.setTickLabelFont(TICK);
                y.setAutoRangeIncludesZero(true);
                XYPlot plot = new XYPlot(data, x, y, r);
                styleXY(plot);
                y.setRange(Math.max(LINE_FLOOR, Math.min(0, y.getLowerBound())), 1.1);
                JFreeChart chart = new JFreeChart(g.label() + (inDomain ? ", in-domain" : ", out-of-domain"), LABEL, plot, true);
                chart.getLegend().setItemFont(TICK);
                chart.getLegend().setPosition(RectangleEdge.BOTTOM);
                panels.add(chart);
            }
        }
        return compose("Gain against merged rank k (" + results.config().world().mergedTasks() + " adapters)",
                panels, new int[]{800, 800}, 560);
    }

    /** One panel per regime: in-domain gain against the number of adapters merged. */
    private static BufferedImage adaptersFigure(QualityResults results, List<MergeCase> rows) {
        List<JFreeChart> panels = new ArrayList<>();
        for (InitRegime g : InitRegime.values()) {
            XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
            Map<String, XYIntervalSeries> series = new LinkedHashMap<>();
            for (MergeCase c : rows) {
                String name = c.k().equals(QualityBenchmark.EXACT) ? c.method() : c.method() + " k=" + c.k();
                XYIntervalSeries s = series.computeIfAbsent(name, n -> {
                    XYIntervalSeries ns = new XYIntervalSeries(n);
                    data.addSeries(ns);
                    return ns;
                });
                QualityResults.Stat y = results.inDomain(c, g);
                double lo = Math.max(LINE_FLOOR, y.mean());
                s.add(c.adapters(), c.adapters(), c.adapters(), lo, Math.max(LINE_FLOOR, y.mean() - y.sd()),
                        Math.max(LINE_FLOOR, y.mean() + y.sd()));
            }
            XYErrorRenderer r = new XYErrorRenderer();
            r.setErrorPaint(Color.DARK_GRAY);
            r.setCapLength(6);
            for (int i = 0; i < series.size(); i++) {
                r.setSeriesPaint(i, PALETTE[i % PALETTE.length]);
                r.setSeriesLinesVisible(i, true);
                r.setSeriesStroke(i, new BasicStroke(2.2f));
            }
            org.jfree.chart.axis.LogAxis x = new org.jfree.chart.axis.LogAxis("adapters merged (log scale)");
            x.setBase(2);
            x.setTickUnit(new org.jfree.chart.axis.NumberTickUnit(1, new java.text.DecimalFormat("0")));
            x.setNumberFormatOverride(new java.text.DecimalFormat("0"));
            x.setLabelFont(LABEL);
            x.setTickLabelFont(TICK);
            int minN = rows.stream().mapToInt(MergeCase::adapters).min().orElse(1);
            int maxN = rows.stream().mapToInt(MergeCase::adapters).max().orElse(2);
            x.setRange(minN / 1.25, maxN * 1.25);
            NumberAxis y = new NumberAxis("in-domain gain (values below " + LINE_FLOOR + " drawn at it)");
            y.setLabelFont(LABEL);
            y.setTickLabelFont(TICK);
            XYPlot plot = new XYPlot(data, x, y, r);
            styleXY(plot);
            y.setRange(LINE_FLOOR, 1.1);
            JFreeChart chart = new JFreeChart(g.label(), LABEL, plot, true);
            chart.getLegend().setItemFont(TICK);
            chart.getLegend().setPosition(RectangleEdge.BOTTOM);
            panels.add(chart);
        }
        return compose("In-domain gain against the number of adapters merged", panels, new int[]{800, 800}, 600);
    }

    private static void styleCategory(CategoryPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xcccccc));
        plot.setRangeGridlinesVisible(true);
        plot.setOutlineVisible(false);
    }

    private static void styleXY(XYPlot plot) {
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xcccccc));
        plot.setDomainGridlinePaint(new Color(0xcccccc));
        plot.setOutlineVisible(false);
        plot.addRangeMarker(new ValueMarker(1.0, Color.DARK_GRAY, new BasicStroke(1.2f, BasicStroke.CAP_BUTT,
                BasicStroke.JOIN_MITER, 1f, new float[]{6f, 4f}, 0f)));
        plot.addRangeMarker(new ValueMarker(0.0, Color.BLACK, new BasicStroke(1f)));
    }

    /**
     * Draws panels on a white image under a title: with two widths, panels go left to right in rows of two; with one,
     * one per row.
     */
    private static BufferedImage compose(String title, List<JFreeChart> panels, int[] widths, int panelH) {
        int cols = widths.length;
        int rows = (panels.size() + cols - 1) / cols;
        int totalW = 0;
        for (int w : widths) totalW += w;
        int titleH = 50;
        BufferedImage img = new BufferedImage(totalW, titleH + rows * panelH, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setPaint(Color.WHITE);
            g.fillRect(0, 0, img.getWidth(), img.getHeight());
            g.setPaint(Color.BLACK);
            g.setFont(TITLE);
            int tw = g.getFontMetrics().stringWidth(title);
            g.drawString(title, (totalW - tw) / 2, titleH - 14);
            for (int i = 0; i < panels.size(); i++) {
                int row = i / cols, col = i % cols;
                int x = 0;
                for (int c = 0; c < col; c++) x += widths[c];
                JFreeChart chart = panels.get(i);
                chart.setBackgroundPaint(Color.WHITE);
                chart.getTitle().setFont(LABEL);
                LegendTitle legend = chart.getLegend();
                if (legend != null) legend.setBackgroundPaint(Color.WHITE);
                chart.draw(g, new Rectangle2D.Double(x, titleH + row * panelH, widths[col], panelH));
            }
        } finally {
            g.dispose();
        }
        return img;
    }

}
