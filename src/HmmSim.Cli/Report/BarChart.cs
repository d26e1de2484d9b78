using System.Globalization;
using System.Text;

namespace HmmSim.Cli.Report;

/// <summary>A self-contained inline-SVG horizontal grouped bar chart: one group per category, one
/// bar per series, each bar labelled with its value. Linear scale from zero.</summary>
internal static class BarChart
{
    private static readonly string[] _palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"];
    private const double Width = 900, LabelWidth = 300, BarArea = 480, BarHeight = 16, GroupGap = 12, Top = 56;

    /// <param name="values">values[category][series].</param>
    public static string Render(string title, string unit, IReadOnlyList<string> categories, IReadOnlyList<string> series, IReadOnlyList<IReadOnlyList<double>> values)
    {
        ArgumentNullException.ThrowIfNull(categories);
        ArgumentNullException.ThrowIfNull(series);
        ArgumentNullException.ThrowIfNull(values);
        double max = values.SelectMany(v => v).Where(double.IsFinite).DefaultIfEmpty(0).Max();
        if (max <= 0)
            max = 1;
        double groupHeight = series.Count * BarHeight + GroupGap;
        double height = Top + categories.Count * groupHeight + 30;
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{XmlText.N(Width)}\" height=\"{XmlText.N(height)}\" viewBox=\"0 0 {XmlText.N(Width)} {XmlText.N(height)}\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n");
        sb.Append($"  <title>{XmlText.Escape(title)}</title>\n");
        sb.Append($"  <rect x=\"0\" y=\"0\" width=\"{XmlText.N(Width)}\" height=\"{XmlText.N(height)}\" fill=\"#ffffff\"/>\n");
        sb.Append($"  <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{XmlText.Escape(title)}</text>\n");
        double lx = 10;
        for (int s = 0; s < series.Count; s++)
        {
            sb.Append($"  <rect x=\"{XmlText.N(lx)}\" y=\"32\" width=\"12\" height=\"12\" fill=\"{_palette[s % _palette.Length]}\"/>");
            // A series with nothing to draw says so, rather than leaving an empty row to puzzle over.
            string name = AllZero(values, s) ? series[s] + " (every value 0)" : series[s];
            sb.Append($"<text x=\"{XmlText.N(lx + 16)}\" y=\"42\">{XmlText.Escape(name)}</text>\n");
            lx += 16 + name.Length * 7 + 20;
        }
        double axisX = LabelWidth;
        for (int c = 0; c < categories.Count; c++)
        {
            double gy = Top + c * groupHeight;
            sb.Append($"  <text x=\"{XmlText.N(axisX - 8)}\" y=\"{XmlText.N(gy + series.Count * BarHeight / 2 + 4)}\" text-anchor=\"end\">{XmlText.Escape(categories[c])}</text>\n");
            for (int s = 0; s < series.Count; s++)
            {
                double v = s < values[c].Count ? values[c][s] : 0;
                double w = double.IsFinite(v) && v > 0 ? v / max * BarArea : 0;
                double by = gy + s * BarHeight;
                string text = Format(v) + (unit.Length > 0 ? " " + unit : "");
                sb.Append($"  <g><title>{XmlText.Escape($"{categories[c]} — {series[s]}: {text}")}</title>");
                sb.Append($"<rect x=\"{XmlText.N(axisX)}\" y=\"{XmlText.N(by + 1)}\" width=\"{XmlText.N(w)}\" height=\"{XmlText.N(BarHeight - 2)}\" fill=\"{_palette[s % _palette.Length]}\"/>");
                sb.Append($"<text x=\"{XmlText.N(axisX + w + 4)}\" y=\"{XmlText.N(by + BarHeight - 4)}\" font-size=\"11\">{XmlText.Escape(text)}</text></g>\n");
            }
        }
        sb.Append($"  <line x1=\"{XmlText.N(axisX)}\" y1=\"{XmlText.N(Top - 4)}\" x2=\"{XmlText.N(axisX)}\" y2=\"{XmlText.N(height - 26)}\" stroke=\"#333\"/>\n");
        sb.Append($"  <text x=\"{XmlText.N(axisX)}\" y=\"{XmlText.N(height - 10)}\" font-size=\"10\" fill=\"#555\">0</text>");
        sb.Append($"<text x=\"{XmlText.N(axisX + BarArea)}\" y=\"{XmlText.N(height - 10)}\" font-size=\"10\" fill=\"#555\" text-anchor=\"middle\">{XmlText.Escape(Format(max))}</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    private static bool AllZero(IReadOnlyList<IReadOnlyList<double>> values, int s) =>
        values.All(v => s >= v.Count || v[s] == 0);

    public static string Format(double v) =>
        !double.IsFinite(v) ? v.ToString(CultureInfo.InvariantCulture)
        : Math.Abs(v) >= 100 || v == Math.Floor(v) ? v.ToString("#,0", CultureInfo.InvariantCulture)
        : v.ToString("#,0.##", CultureInfo.InvariantCulture);
}
