using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using HmmSim.Cli.Report;

namespace HmmSim.Cli.Explore;

/// <summary>A machine configuration of the matrix: a variant under a design, or why it was skipped.</summary>
internal sealed record ExploreRow(string Variant, string Design, string? Skipped);

/// <summary>One cell: a check family under a row's configuration.</summary>
internal sealed record ExploreCell(string Status, int Passed, int Failed, int Items, string? Check, string? Message, int? Seed, string? Reproducer, string? Replay);

internal sealed record ExploreMatrixRow(string Variant, string Design, string? Skipped, IReadOnlyDictionary<string, ExploreCell> Cells);

internal sealed record ExploreShard(int Index, int Count);

internal sealed record ExploreSeeds(int Start, int Count);

/// <summary>The JSON document of `hmmsim explore --json` and `hmmsim explore merge` (schema in
/// docs/explore.md). Items are what this shard ran; the matrix is computed from them.</summary>
internal sealed record ExploreDocument(
    string Schema,
    ExploreShard? Shard,
    IReadOnlyList<string> Families,
    ExploreSeeds Seeds,
    int Steps,
    int TotalItems,
    IReadOnlyList<ExploreRow> Rows,
    IReadOnlyList<ItemResult> Items,
    IReadOnlyList<ExploreMatrixRow> Matrix,
    bool Passed)
{
    public const string SchemaName = "hmmsim-explore/1";

    public static JsonSerializerOptions Json { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DictionaryKeyPolicy = null,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public static ExploreDocument Build(ExploreShard? shard, IReadOnlyList<string> families, ExploreSeeds seeds, int steps, int totalItems, IReadOnlyList<ExploreRow> rows, IEnumerable<ItemResult> items)
    {
        var sorted = items.OrderBy(i => i.Index).ToList();
        var matrix = new List<ExploreMatrixRow>();
        foreach (var row in rows)
        {
            var cells = new Dictionary<string, ExploreCell>();
            if (row.Skipped is null)
            {
                foreach (var family in families)
                {
                    var mine = sorted.Where(i => i.Variant == row.Variant && i.Design == row.Design && i.Family == family).ToList();
                    if (mine.Count == 0)
                        continue;
                    var first = mine.FirstOrDefault(i => i.Status == "failed");
                    cells[family] = new ExploreCell(first is null ? "passed" : "failed", mine.Sum(i => i.Passed), mine.Sum(i => i.Failed), mine.Count,
                        first?.Check, first?.Message, first?.Seed, first?.Reproducer, first?.Replay);
                }
            }
            matrix.Add(new ExploreMatrixRow(row.Variant, row.Design, row.Skipped, cells));
        }
        bool passed = sorted.All(i => i.Status != "failed");
        return new ExploreDocument(SchemaName, shard, families, seeds, steps, totalItems, rows, sorted, matrix, passed);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static ExploreDocument FromJson(string json) =>
        JsonSerializer.Deserialize<ExploreDocument>(json, Json) ?? throw new JsonException("empty document");

    private static string ShortDesign(string design) => design == nameof(DevicePrivateDesign.PhysicalAddressSpace) ? "today" : "redesign";

    private static string CellText(ExploreCell? c) => c is null ? "-" : c.Status == "passed" ? $"pass {c.Passed}" : $"FAIL {c.Failed}/{c.Passed + c.Failed}: {c.Check}";

    /// <summary>The matrix as text: a table, then each failing cell's first failure in full.</summary>
    public string ToText()
    {
        var sb = new StringBuilder();
        var header = new List<string> { "variant", "design" };
        header.AddRange(Families);
        var table = new List<List<string>> { header };
        foreach (var r in Matrix)
        {
            var line = new List<string> { r.Variant, ShortDesign(r.Design) };
            if (r.Skipped is not null)
                line.Add("skipped (see below)");
            else
                line.AddRange(Families.Select(f => Trim(CellText(r.Cells.GetValueOrDefault(f)), 48)));
            table.Add(line);
        }
        int cols = table.Max(l => l.Count);
        var widths = Enumerable.Range(0, cols).Select(c => table.Max(l => c < l.Count ? l[c].Length : 0)).ToArray();
        foreach (var line in table)
            sb.AppendLine(string.Join("  ", line.Select((cell, c) => cell.PadRight(widths[c]))).TrimEnd());
        var failures = Matrix.SelectMany(r => r.Cells.Where(c => c.Value.Status == "failed").Select(c => (Row: r, Family: c.Key, Cell: c.Value))).ToList();
        if (failures.Count > 0)
        {
            sb.AppendLine().AppendLine("First failure of each failing cell:");
            foreach (var (row, family, cell) in failures)
            {
                sb.AppendLine($"  {row.Variant} under {row.Design}, {family}{(cell.Seed is { } s ? $" (seed {s})" : "")}: {cell.Check}");
                sb.AppendLine($"    {cell.Message}");
                if (cell.Reproducer is not null)
                    sb.AppendLine($"    reproducer: {cell.Reproducer}; hmmsim run replays it: {cell.Replay}");
            }
        }
        var skipped = Matrix.Where(r => r.Skipped is not null).ToList();
        if (skipped.Count > 0)
        {
            sb.AppendLine().AppendLine("Skipped:");
            foreach (var r in skipped)
                sb.AppendLine($"  {r.Variant} under {r.Design}: {r.Skipped}");
        }
        int failedItems = Items.Count(i => i.Status == "failed");
        sb.AppendLine().AppendLine(Passed ? $"PASS: {Items.Count} work items, every check held" : $"FAIL: {failedItems} of {Items.Count} work items failed a check");
        return sb.ToString();
    }

    private static string Trim(string s, int max) => s.Length <= max ? s : s[..(max - 3)] + "...";

    public HtmlReport ToHtml()
    {
        var report = new HtmlReport("hmmsim explore: which variant breaks what");
        report.Paragraph($"{Matrix.Count} machine configurations x {Families.Count} check families; random seeds {Seeds.Start}..{Seeds.Start + Seeds.Count - 1} ({Steps} steps each). {(Passed ? "Every check held." : "Some checks failed.")}", "sub");
        var header = new List<string> { "variant", "design" };
        header.AddRange(Families);
        report.Table(header, Matrix.Select(r =>
        {
            var cells = new List<string> { r.Variant, r.Design };
            cells.AddRange(Families.Select(f => r.Skipped is not null ? "skipped" : CellText(r.Cells.GetValueOrDefault(f))));
            return (IReadOnlyList<string>)cells;
        }));
        var failures = Matrix.SelectMany(r => r.Cells.Where(c => c.Value.Status == "failed").Select(c => (Row: r, Family: c.Key, Cell: c.Value))).ToList();
        if (failures.Count > 0)
        {
            report.Heading("First failures");
            foreach (var (row, family, cell) in failures)
                report.Pre($"{row.Variant} under {row.Design}, {family}{(cell.Seed is { } s ? $" (seed {s})" : "")}: {cell.Check}\n{cell.Message}"
                    + (cell.Reproducer is null ? "" : $"\nreproducer: {cell.Reproducer}\nhmmsim run replays it: {cell.Replay}"));
        }
        var skipped = Matrix.Where(r => r.Skipped is not null).ToList();
        if (skipped.Count > 0)
        {
            report.Heading("Skipped");
            report.Table(["variant", "design", "why"], skipped.Select(r => (IReadOnlyList<string>)[r.Variant, r.Design, r.Skipped!]));
        }
        return report;
    }
}
