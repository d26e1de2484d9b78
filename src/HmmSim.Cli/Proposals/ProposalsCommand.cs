using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using HmmSim.Cli.Layout;
using HmmSim.Cli.Report;

namespace HmmSim.Cli.Proposals;

/// <summary>`hmmsim proposals`: the three open proposals (ZONE_DEVICE_PRIVATE, a (space, index)
/// identity, a minimal device-page descriptor) beside today's design and the default redesign.</summary>
public static class ProposalsCommand
{
    private static readonly JsonSerializerOptions _indented = new() { WriteIndented = true };

    public static Command Create()
    {
        var cmd = new Command("proposals", "Compare the open proposals (ZONE_DEVICE_PRIVATE, (space, index) identity, minimal device-page metadata) "
            + "with today's design and the default redesign: battery, same answers, metadata per TiB and per machine shape, memmap init, "
            + "entry bit budget, code sites. Examples: hmmsim proposals; hmmsim proposals --json; hmmsim proposals --report proposals.html");
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of tables." };
        var report = new Option<string?>("--report") { Description = "Also write a self-contained HTML report with charts to this path." };
        var noBattery = new Option<bool>("--no-battery") { Description = "Skip running the 152 ported selftests under each design (faster)." };
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        var census = new Option<bool>("--census") { Description = "Instead: run the redesign's selftest battery under the device-page census and print every struct page / folio field access on device-private folios, by kernel function." };
        cmd.Options.Add(noBattery);
        cmd.Options.Add(census);
        cmd.SetAction(r => r.GetValue(census)
            ? Census(r.GetValue(json), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error)
            : Run(r.GetValue(json), r.GetValue(report), !r.GetValue(noBattery), r.InvocationConfiguration.Output, r.InvocationConfiguration.Error));
        return cmd;
    }

    private static int Run(bool json, string? reportPath, bool battery, TextWriter output, TextWriter error)
    {
        var rows = ProposalsTable.Build(battery, json ? null : s => error.WriteLine($"proposals: {s}"));
        var layouts = ProposalFigures.PageFlagsLayouts();
        var budgets = ProposalFigures.IdentityBudgets();
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new
            {
                designs = rows,
                pageFlags = layouts,
                identityBudget = budgets,
                minimalDescriptor = new { fields = ProposalFigures.MinimalDescriptorFields, bytesPerPage = ProposalFigures.MinimalDescriptorBytes },
                zoneSitesChanged = ProposalFigures.ZoneSitesChanged,
                zoneQuestionCallSitesUnchanged = ProposalFigures.ZoneQuestionCallSites,
                identitySitesChanged = ProposalFigures.IdentitySitesChanged,
                metadataSitesChanged = ProposalFigures.MetadataSitesChanged,
                initAnchor = new { coldNsPerPage = ProposalsTable.AnchorColdNsPerPage, warmNsPerPage = ProposalsTable.AnchorWarmNsPerPage },
            }, _indented));
        }
        else
        {
            Text(output, rows, layouts, budgets);
        }
        if (reportPath is not null)
        {
            Html(rows, layouts, budgets).Save(reportPath);
            error.WriteLine($"proposals: report written to {reportPath}");
        }
        if (Interrupt.Requested)
        {
            error.WriteLine("proposals: interrupted (Ctrl-C): the battery counts only the selftests that ran");
            return Interrupt.ExitCode;
        }
        bool ok = rows.All(r => r.BatteryPassed == r.BatteryTotal && r.SameAnswers != false);
        return ok ? 0 : 1;
    }

    /// <summary>The census over the battery: the redesign's selftests (device-private fixtures).</summary>
    private static int Census(bool json, TextWriter output, TextWriter error)
    {
        var rows = CensusRun.Run(s => error.WriteLine($"proposals census: {s}"));
        int exit = Interrupt.Requested ? Interrupt.ExitCode : 0;
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(rows, _indented));
            return exit;
        }
        Table(output, "Device-private struct page / folio accesses over the battery (field, read/write, count, kernel functions)",
            ["field", "r/w", "count", "functions"],
            rows.GroupBy(r => (r.Field, r.Write)).Select(g => (IReadOnlyList<string>)[g.Key.Field, g.Key.Write ? "write" : "read",
                N(g.Where(r => r.Function == "(all)").Sum(r => r.Count), "N0"),
                string.Join(", ", g.Where(r => r.Function != "(all)").OrderByDescending(r => r.Count).Select(r => r.Function))]));
        output.WriteLine($"Fields used: {string.Join(", ", rows.Select(r => r.Field.StartsWith("flags:", StringComparison.Ordinal) ? "Flags" : r.Field).Distinct().Order(StringComparer.Ordinal))}");
        output.WriteLine($"Minimal descriptor holds: {string.Join(", ", ProposalFigures.MinimalDescriptorFields)} ({ProposalFigures.MinimalDescriptorBytes} B per page)");
        return exit;
    }

    private static string N(double v, string f = "N1") => v.ToString(f, CultureInfo.InvariantCulture);
    private static string Mib(long b) => N(b / 1048576.0, "N0") + " MiB";

    private static IReadOnlyList<string> DesignHeader { get; } =
        ["design", "battery", "same answers", "B/page", "kernel MiB per TiB", "entry", "sites changed"];

    private static IEnumerable<IReadOnlyList<string>> DesignCells(IReadOnlyList<ProposalsTable.Row> rows) =>
        rows.Select(r => (IReadOnlyList<string>)[r.Design, r.BatteryTotal == 0 ? "not run" : $"{r.BatteryPassed}/{r.BatteryTotal}",
            r.SameAnswers switch { null => "(baseline: today)", true => "yes", false => "NO: " + r.FirstDifference },
            r.DescriptorBytesPerPage.ToString(CultureInfo.InvariantCulture), N(r.KernelBytesPerTiB / 1048576, "N0"), r.EntryBudget,
            r.SitesChanged.ToString(CultureInfo.InvariantCulture)]);

    private static IReadOnlyList<string> ShapeHeader { get; } =
        ["design", "shape", "kernel metadata", "% of device memory", "model at registration", "model after 1 page/device", "pages initialised", "init ms (warm..cold)"];

    private static IEnumerable<IReadOnlyList<string>> ShapeCells(IReadOnlyList<ProposalsTable.Row> rows) =>
        rows.SelectMany(r => r.Shapes.Select(s => (IReadOnlyList<string>)[r.Design, s.Shape,
            s.RegisterError.Length > 0 ? "failed: " + s.RegisterError : Mib(s.KernelMetadataBytes), N(s.PercentOfDeviceMemory, "N2") + "%",
            N(s.ModelBytesAtRegistration, "N0") + " B", N(s.ModelBytesAfterTouch, "N0") + " B", N(s.MemmapPagesInitialisedByKernel, "N0"),
            $"{N(s.InitMsWarm, "N0")}..{N(s.InitMsCold, "N0")}"]));

    private static void Text(TextWriter o, IReadOnlyList<ProposalsTable.Row> rows, IReadOnlyList<PageFlagsLayoutRow> layouts, IReadOnlyList<IdentityBudgetRow> budgets)
    {
        Table(o, "Designs and proposals", DesignHeader, DesignCells(rows));
        Table(o, "Machine shapes (kernel metadata, model memory, memmap init at registration)", ShapeHeader, ShapeCells(rows));
        Table(o, "page->flags with ZONE_DEVICE_PRIVATE", ["config", "zones", "ZONES_WIDTH today -> proposal", "unused bits", "out of page->flags today", "with the proposal"],
            layouts.Select(l => (IReadOnlyList<string>)[l.Config, l.ZonesToday.ToString(CultureInfo.InvariantCulture), $"{l.ZonesWidthToday} -> {l.ZonesWidthProposal}",
                $"{l.UnusedToday} -> {l.UnusedProposal}", l.SpillsToday, l.SpillsProposal]));
        Table(o, "Device-private entry bit budget", ["arch", "offset bits", "index bits", "young+dirty", "space bits", "global limit", "per space", "spaces"],
            budgets.Select(b => (IReadOnlyList<string>)[b.Arch, $"{b.OffsetBits}", $"{b.IndexBits}", $"{b.MigrationBits}", $"{b.SpaceBits}",
                Units.Human(b.GlobalLimitBytes), Units.Human(b.MaxBytesPerSpace), N(b.MaxSpaces, "N0")]));
        o.WriteLine($"Minimal descriptor: {string.Join(", ", ProposalFigures.MinimalDescriptorFields)} = {ProposalFigures.MinimalDescriptorBytes} B per page (struct page: {ProposalFigures.StructPageBytes} B).");
        o.WriteLine($"ZONE_DEVICE_PRIVATE changes {ProposalFigures.ZoneSitesChanged.Count} definitions; {ProposalFigures.ZoneQuestionCallSites} call sites asking is_zone_device_page/is_device_private_page keep their code.");
        foreach (var s in ProposalFigures.ZoneSitesChanged)
            o.WriteLine($"  {s.Function} ({s.File}): {s.Change}");
        o.WriteLine($"Init-time anchor: memmap_init_zone_device of a 100 GB order-0 fsdax namespace, 1486 ms first binding / 273.52 ms rebinds (Li Zhe, LKML, May 2026): {N(ProposalsTable.AnchorWarmNsPerPage, "N1")}..{N(ProposalsTable.AnchorColdNsPerPage, "N1")} ns per page.");
    }

    private static void Table(TextWriter o, string title, IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => r[i].Length))).ToArray();
        o.WriteLine(title);
        o.WriteLine(string.Join("  ", header.Select((h, i) => h.PadRight(widths[i]))).TrimEnd());
        foreach (var r in all)
            o.WriteLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        o.WriteLine();
    }

    private static HtmlReport Html(IReadOnlyList<ProposalsTable.Row> rows, IReadOnlyList<PageFlagsLayoutRow> layouts, IReadOnlyList<IdentityBudgetRow> budgets)
    {
        var r = new HtmlReport("hmmsim proposals — ZONE_DEVICE_PRIVATE, (space, index), minimal device-page metadata");
        r.Heading("Designs and proposals").Table(DesignHeader, DesignCells(rows));
        r.Figure(BarChart.Render("Kernel metadata per TiB of device memory", "MiB", [.. rows.Select(x => x.Design)], ["MiB per TiB"],
            [.. rows.Select(x => (IReadOnlyList<double>)[x.KernelBytesPerTiB / 1048576])]), "What the kernel spends describing device memory, per design.");
        r.Heading("Machine shapes").Table(ShapeHeader, ShapeCells(rows));
        foreach (var shape in ProposalsTable.Shapes)
        {
            r.Figure(BarChart.Render($"{shape.Name}: kernel metadata and init", "MiB / ms", [.. rows.Select(x => x.Design)], ["metadata MiB", "init ms (cold)"],
                [.. rows.Select(x => x.Shapes.First(s => s.Shape == shape.Name)).Select(s => (IReadOnlyList<double>)[s.KernelMetadataBytes / 1048576.0, s.InitMsCold])]),
                $"{shape.Name}: struct page (or descriptor) bytes and estimated memmap_init_zone_device time.");
        }
        r.Heading("page->flags with ZONE_DEVICE_PRIVATE").Table(["config", "zones", "ZONES_WIDTH", "unused bits", "out of page->flags today", "with the proposal"],
            layouts.Select(l => (IReadOnlyList<string>)[l.Config, $"{l.ZonesToday}", $"{l.ZonesWidthToday} -> {l.ZonesWidthProposal}", $"{l.UnusedToday} -> {l.UnusedProposal}", l.SpillsToday, l.SpillsProposal]));
        r.Heading("Device-private entry bit budget").Table(["arch", "offset bits", "index bits", "space bits", "global limit", "per space", "spaces"],
            budgets.Select(b => (IReadOnlyList<string>)[b.Arch, $"{b.OffsetBits}", $"{b.IndexBits}", $"{b.SpaceBits}", Units.Human(b.GlobalLimitBytes), Units.Human(b.MaxBytesPerSpace), N(b.MaxSpaces, "N0")]));
        r.Heading("Code sites ZONE_DEVICE_PRIVATE changes").Table(["function", "file", "change"], ProposalFigures.ZoneSitesChanged.Select(s => (IReadOnlyList<string>)[s.Function, s.File, s.Change]));
        r.Paragraph($"{ProposalFigures.ZoneQuestionCallSites} call sites asking is_zone_device_page / is_device_private_page keep their code.");
        return r;
    }
}
