using System.CommandLine;
using System.Text.Json;
using HmmSim.Cli.Layout;
using HmmSim.Cli.Report;
using HmmSim.Cli.Workloads;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>`hmmsim bench mm`: the mm-core figures, measured once (BenchmarkDotNet in bench/ for rigour).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the model; every table names the computer and the model machine, and gives the median with the min-max spread. Example: hmmsim bench mm --size 1GiB");
        var mm = new Command("mm", "Anonymous fault rates (4 KiB and THP), fork, page-table walk, metadata per page, on the default machine (46-bit, 8 GiB).");
        var size = CliOptions.Size("--size", "Size of the populated region.", 1UL << 30, 2UL << 20, 4UL << 30, 2UL << 20);
        var legacy = CliOptions.LegacySize("--size-mib", 20, 2UL << 20, 4UL << 30, 2UL << 20);
        var iterations = Iterations(3);
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        mm.Options.Add(size);
        mm.Options.Add(legacy);
        mm.Options.Add(iterations);
        mm.Options.Add(json);
        mm.Options.Add(report);
        mm.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            ulong bytes = CliOptions.SizeValue(r, size, legacy);
            int n = r.GetValue(iterations);
            var samples = Progress.Run($"measuring the mm core over {Units.Human(bytes)}", r.GetValue(json), output, () =>
            {
                // One untimed round at a small size first, so JIT compilation is not in the figures.
                MmWorkloads.Measure(2UL << 20);
                var runs = new List<List<MmWorkloads.Figure>>();
                for (int i = 0; i < n && !Interrupt.Requested; i++)
                {
                    Progress.Tick?.Invoke($"round {i + 1} of {n}");
                    runs.Add(MmWorkloads.Measure(bytes));
                }
                return runs;
            });
            if (samples.Count == 0)
                return Interrupt.ExitCode;
            var figures = samples[0].Select((f, i) => (f.Name, f.Unit, Spread: HmmWorkloads.Spread([.. samples.Select(s => s[i].Value)]))).ToList();
            var medians = figures.Select(f => new MmWorkloads.Figure(f.Name, f.Spread.Median, f.Unit)).ToList();
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench mm", path, () => HtmlReport.ForMm(medians, (int)(bytes >> 20)), r.InvocationConfiguration.Error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(MmWorkloads.NewConfig()),
                    sizeBytes = bytes,
                    rounds = samples.Count,
                    figures = figures.Select(f => new { name = f.Name, value = f.Spread.Median, min = f.Spread.Min, max = f.Spread.Max, unit = f.Unit }),
                }));
                return samples.Count < n ? Interrupt.ExitCode : 0;
            }
            var table = Title(new Table(), $"mm core over {Units.Human(bytes)}: median of {samples.Count} rounds (min-max), after an untimed warm-up", MmWorkloads.NewConfig())
                .AddColumn(Terminal.Column("figure")).AddColumn(Terminal.Column("median", right: true)).AddColumn(Terminal.Column("min-max", right: true)).AddColumn(Terminal.Column("unit"));
            foreach (var f in figures)
                table.AddRow(Markup.Escape(f.Name), f.Spread.Median.ToString("N1"), $"{f.Spread.Min:N1}-{f.Spread.Max:N1}", Markup.Escape(f.Unit));
            RunCommand.Console(output).Write(table);
            return samples.Count < n ? Interrupt.ExitCode : 0;
        });
        bench.Subcommands.Add(mm);
        bench.Subcommands.Add(MigrateCommand());
        bench.Subcommands.Add(FaultCommand());
        bench.Subcommands.Add(P2pCommand());
        bench.Subcommands.Add(RegisterCommand());
        bench.Subcommands.Add(SoakCommand());
        bench.Subcommands.Add(ScaleCommand());
        bench.Subcommands.Add(ChecksCommand());
        return bench;
    }

    private static Option<int> Iterations(int defaultValue) => new("--iterations")
    {
        Description = $"Timed rounds (after an untimed warm-up); the tables show the median and the min-max spread. Default: {defaultValue}.",
        DefaultValueFactory = _ => defaultValue,
    };

    /// <summary>A table titled with what it measured, the computer and the model machine.</summary>
    private static Table Title(Table table, string what, MachineConfig machine) =>
        table.Title(Markup.Escape($"{what}\nhost: {HostInfo.Describe()}\nmodel machine: {CliOptions.Describe(machine)}"));

    private static Option<DevicePrivateDesign[]> DesignOption() => CliOptions.Design("redesign");

    /// <summary>The benches' model machine under one design (the default machine, without the checker).</summary>
    private static MachineConfig Machine(DevicePrivateDesign d) => MmWorkloads.NewConfig() with { DevicePrivateDesign = d };

    /// <summary>`hmmsim bench migrate`: benchmark_thp_migration beside this machine's memcpy bandwidth.</summary>
    private static Command MigrateCommand()
    {
        var cmd = new Command("migrate", "The kernel's benchmark_thp_migration table (sys->dev, dev->sys; 1/4 to 128 THPs; with and without THP) beside memcpy. Example: hmmsim bench migrate --iterations 5 --design both");
        var design = DesignOption();
        var iterations = Iterations(5);
        var json = CliOptions.Json();
        var sizes = new Option<string[]>("--size") { Description = "Only these sizes, with units (repeatable; default: the test's seven, 512KiB to 256MiB).", AllowMultipleArgumentsPerToken = true };
        var legacySizes = new Option<int[]>("--size-kib") { Hidden = true, AllowMultipleArgumentsPerToken = true };
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(iterations);
        cmd.Options.Add(sizes);
        cmd.Options.Add(legacySizes);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            var only = new List<ulong>();
            foreach (var k in r.GetValue(legacySizes) ?? [])
                only.Add((ulong)Math.Max(0, k) << 10);
            foreach (var t in r.GetValue(sizes) ?? [])
            {
                if (!Units.TryParseSize(t, out ulong b))
                {
                    error.WriteLine($"hmmsim bench migrate: --size '{t}' is not a size that fits in 64 bits (e.g. 2MiB)");
                    return 2;
                }
                only.Add(b);
            }
            if (r.GetValue(iterations) is < 1 or > 1000 || only.Any(b => b is < 4096 or > 1UL << 30 || b % 4096 != 0))
            {
                error.WriteLine("hmmsim bench migrate: --iterations must be 1..1000 and --size a multiple of 4 KiB up to 1 GiB");
                return 2;
            }
            var designs = r.GetValue(design)!;
            var results = Progress.Run("benchmark_thp_migration", r.GetValue(json), output, () =>
            {
                double memcpy = HmmWorkloads.MemcpyGBs();
                var list = new List<(DevicePrivateDesign Design, List<HmmWorkloads.MigrationRow> Rows)>();
                foreach (var d in designs)
                {
                    if (Interrupt.Requested)
                        break;
                    Progress.Tick?.Invoke(d.ToString());
                    list.Add((d, HmmWorkloads.ThpMigration(d, r.GetValue(iterations), only.Count > 0 ? only : null)));
                }
                return (memcpy, list);
            });
            var (memcpy, perDesign) = results;
            int exit = Interrupt.Requested ? Interrupt.ExitCode : 0;
            foreach (var (d, rows) in perDesign)
                if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench migrate", designs.Length > 1 ? Suffixed(path, d) : path, () => HtmlReport.ForMigrate(d, memcpy, rows), error))
                    return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(Machine(designs[0])),
                    memcpyGBs = memcpy,
                    iterations = r.GetValue(iterations),
                    designs = perDesign.Select(p => new
                    {
                        design = p.Design.ToString(),
                        rows = p.Rows.Select(x => new
                        {
                            bytes = x.Bytes,
                            thp = x.Thp,
                            sysToDevMs = x.SysToDevMs,
                            sysToDevMinMs = x.SysToDevMinMs,
                            sysToDevMaxMs = x.SysToDevMaxMs,
                            sysToDevGBs = x.SysToDevGBs,
                            memcpyMs = x.MemcpyMs,
                            sysToDevOfMemcpy = x.SysToDevOfMemcpy.Median,
                            sysToDevOfMemcpyMin = x.SysToDevOfMemcpy.Min,
                            sysToDevOfMemcpyMax = x.SysToDevOfMemcpy.Max,
                            devToSysMs = x.DevToSysMs,
                            devToSysMinMs = x.DevToSysMinMs,
                            devToSysMaxMs = x.DevToSysMaxMs,
                            devToSysGBs = x.DevToSysGBs,
                            devToSysOfMemcpy = x.DevToSysOfMemcpy.Median,
                            devToSysOfMemcpyMin = x.DevToSysOfMemcpy.Min,
                            devToSysOfMemcpyMax = x.DevToSysOfMemcpy.Max,
                            sysToDevBookkeepingNsPerPage = x.SysToDevBookkeepingNsPerPage.Median,
                            sysToDevBookkeepingNsPerPageMin = x.SysToDevBookkeepingNsPerPage.Min,
                            sysToDevBookkeepingNsPerPageMax = x.SysToDevBookkeepingNsPerPage.Max,
                            devToSysBookkeepingNsPerPage = x.DevToSysBookkeepingNsPerPage.Median,
                            devToSysBookkeepingNsPerPageMin = x.DevToSysBookkeepingNsPerPage.Min,
                            devToSysBookkeepingNsPerPageMax = x.DevToSysBookkeepingNsPerPage.Max,
                        }),
                    }),
                }));
                return exit;
            }
            foreach (var (d, rows) in perDesign)
            {
                var table = Title(new Table(), $"benchmark_thp_migration, {CliOptions.Name(d)}; memcpy {memcpy:N1} GB/s; median of {r.GetValue(iterations)} rounds (min-max), after untimed warm-up rounds", Machine(d))
                    .AddColumn(Terminal.Column("size")).AddColumn(Terminal.Column("THP")).AddColumn(Terminal.Column("sys->dev ms (min-max)", right: true)).AddColumn(Terminal.Column("GB/s", right: true))
                    .AddColumn(Terminal.Column("of memcpy (min-max)", right: true)).AddColumn(Terminal.Column("dev->sys ms (min-max)", right: true)).AddColumn(Terminal.Column("GB/s", right: true))
                    .AddColumn(Terminal.Column("of memcpy (min-max)", right: true));
                foreach (var x in rows)
                {
                    table.AddRow(Size(x.Bytes), x.Thp ? "yes" : "no", $"{x.SysToDevMs:N3} ({x.SysToDevMinMs:N3}-{x.SysToDevMaxMs:N3})", x.SysToDevGBs.ToString("N2"), Ratio(x.SysToDevOfMemcpy),
                        $"{x.DevToSysMs:N3} ({x.DevToSysMinMs:N3}-{x.DevToSysMaxMs:N3})", x.DevToSysGBs.ToString("N2"), Ratio(x.DevToSysOfMemcpy));
                }
                RunCommand.Console(output).Write(table);
            }
            return exit;
        });
        return cmd;
    }

    /// <summary>report.html → report-DeviceAddressSpace.html, one report per design for --design both.</summary>
    private static string Suffixed(string path, DevicePrivateDesign d) =>
        Path.Combine(Path.GetDirectoryName(path) ?? "", $"{Path.GetFileNameWithoutExtension(path)}-{d}{Path.GetExtension(path)}");

    /// <summary>`hmmsim bench fault`: hmm_range_fault snapshot throughput.</summary>
    private static Command FaultCommand()
    {
        var cmd = new Command("fault", "hmm_range_fault throughput (pages/s) over a populated range, by SNAPSHOT ioctl and by one call, beside a raw scan of the same PTE words. Example: hmmsim bench fault --size 1GiB --design both");
        var design = DesignOption();
        var size = CliOptions.Size("--size", "Size of the populated range.", 1UL << 30, 1UL << 20, 4UL << 30, 1UL << 20);
        var legacy = CliOptions.LegacySize("--size-mib", 20, 1UL << 20, 4UL << 30, 1UL << 20);
        var iterations = Iterations(5);
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(size);
        cmd.Options.Add(legacy);
        cmd.Options.Add(iterations);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            ulong bytes = CliOptions.SizeValue(r, size, legacy);
            int n = r.GetValue(iterations);
            var designs = r.GetValue(design)!;
            var results = Progress.Run($"hmm_range_fault over {Units.Human(bytes)}", r.GetValue(json), output, () =>
            {
                var list = new List<(DevicePrivateDesign Design, (double Median, double Min, double Max) Ioctl, (double Median, double Min, double Max) Call, (double Median, double Min, double Max) Raw, (double Median, double Min, double Max) OfRaw)>();
                foreach (var d in designs)
                {
                    HmmWorkloads.SnapshotThroughput(d, 1UL << 20);   // untimed warm-up
                    var ioctl = new List<double>();
                    var call = new List<double>();
                    var raw = new List<double>();
                    var ofRaw = new List<double>();
                    for (int i = 0; i < n && !Interrupt.Requested; i++)
                    {
                        Progress.Tick?.Invoke($"{d}: round {i + 1} of {n}");
                        var round = HmmWorkloads.SnapshotThroughput(d, bytes);
                        ioctl.Add(round.IoctlPagesPerSec);
                        call.Add(round.RangeFaultPagesPerSec);
                        raw.Add(round.RawScanPagesPerSec);
                        ofRaw.Add(round.RangeFaultOfRawScan);
                    }
                    if (ioctl.Count == 0)
                        break;
                    list.Add((d, HmmWorkloads.Spread([.. ioctl]), HmmWorkloads.Spread([.. call]), HmmWorkloads.Spread([.. raw]), HmmWorkloads.Spread([.. ofRaw])));
                    if (Interrupt.Requested)
                        break;
                }
                return list;
            });
            int exit = results.Count < designs.Length || Interrupt.Requested ? Interrupt.ExitCode : 0;
            foreach (var x in results)
                if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench fault", designs.Length > 1 ? Suffixed(path, x.Design) : path, () => HtmlReport.ForFault(x.Design, (int)(bytes >> 20), x.Ioctl.Median, x.Call.Median, x.Raw.Median), error))
                    return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(Machine(designs[0])),
                    sizeBytes = bytes,
                    iterations = n,
                    designs = results.Select(x => new
                    {
                        design = x.Design.ToString(),
                        snapshotIoctlPagesPerSec = x.Ioctl.Median,
                        snapshotIoctlMin = x.Ioctl.Min,
                        snapshotIoctlMax = x.Ioctl.Max,
                        hmmRangeFaultPagesPerSec = x.Call.Median,
                        hmmRangeFaultMin = x.Call.Min,
                        hmmRangeFaultMax = x.Call.Max,
                        rawPteScanPagesPerSec = x.Raw.Median,
                        rawPteScanMin = x.Raw.Min,
                        rawPteScanMax = x.Raw.Max,
                        hmmRangeFaultOfRawScan = x.OfRaw.Median,
                        hmmRangeFaultOfRawScanMin = x.OfRaw.Min,
                        hmmRangeFaultOfRawScanMax = x.OfRaw.Max,
                    }),
                }));
                return exit;
            }
            var table = Title(new Table(), $"hmm_range_fault over {Units.Human(bytes)}, pages/s: median of {n} rounds (min-max), after an untimed warm-up", Machine(designs[0]))
                .AddColumn(Terminal.Column("design")).AddColumn(Terminal.Column("SNAPSHOT ioctl (32-page windows)", right: true)).AddColumn(Terminal.Column("one hmm_range_fault call", right: true))
                .AddColumn(Terminal.Column("raw scan of the PTE words", right: true)).AddColumn(Terminal.Column("call ÷ raw scan", right: true));
            foreach (var x in results)
                table.AddRow(CliOptions.Name(x.Design), Spread(x.Ioctl, "N0"), Spread(x.Call, "N0"), Spread(x.Raw, "N0"), Spread(x.OfRaw, "P1"));
            RunCommand.Console(output).Write(table);
            return exit;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench p2p`: bytes through RAM (the CPU round trip) vs over the P2P alias.</summary>
    private static Command P2pCommand()
    {
        var cmd = new Command("p2p", "One buffer read by a second device: migrated through RAM vs read over the owner's BAR, per PCI topology. Example: hmmsim bench p2p --size 64MiB");
        var design = DesignOption();
        var size = CliOptions.Size("--size", "Buffer size.", 64UL << 20, 1UL << 20, 1UL << 30, 1UL << 20);
        var legacy = CliOptions.LegacySize("--size-mib", 20, 1UL << 20, 1UL << 30, 1UL << 20);
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(size);
        cmd.Options.Add(legacy);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            ulong bytes = CliOptions.SizeValue(r, size, legacy);
            var designs = r.GetValue(design)!;
            var results = Progress.Run("P2P read, both ways, both topologies", r.GetValue(json), output, () =>
                designs.TakeWhile(_ => !Interrupt.Requested).Select(d => (Design: d, Rows: P2pWorkload.Run(d, bytes))).ToList());
            bool ok = results.All(x => x.Rows.All(y => y.DataOk));
            int exit = Interrupt.Requested ? Interrupt.ExitCode : ok ? 0 : 1;
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench p2p", path, () => HtmlReport.ForTable($"hmmsim bench p2p — {Units.Human(bytes)}", HostInfo.Describe(), _p2pHeader, [.. results.SelectMany(x => x.Rows.Select(y => P2pCells(x.Design, y)))]), r.InvocationConfiguration.Error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(Machine(designs[0])),
                    sizeBytes = bytes,
                    rows = results.SelectMany(x => x.Rows.Select(y => new { design = x.Design.ToString(), mode = y.Mode, topology = y.Topology.ToString(), pagesMigratedToRam = y.PagesMigratedToRam, bytesThroughRam = y.BytesThroughRam, bytesOverAlias = y.BytesOverAlias, ms = y.Ms, dataOk = y.DataOk })),
                }));
                return exit;
            }
            var table = Title(new Table(), $"{Units.Human(bytes)} read by unit 1 from unit 0's memory (one run each)", Machine(designs[0]));
            foreach (var h in _p2pHeader)
                table.AddColumn(Terminal.Column(h, right: h.Contains("MiB", StringComparison.Ordinal) || h is "ms" or "pages migrated to RAM"));
            foreach (var x in results)
                foreach (var y in x.Rows)
                    table.AddRow([.. P2pCells(x.Design, y).Select(Markup.Escape)]);
            RunCommand.Console(output).Write(table);
            return exit;
        });
        return cmd;
    }

    private static readonly string[] _p2pHeader = ["design", "topology", "importer", "pages migrated to RAM", "MiB through RAM", "MiB over the alias", "ms", "data"];

    private static string[] P2pCells(DevicePrivateDesign d, P2pWorkload.Row x) =>
        [CliOptions.Name(d), x.Topology.ToString(), x.Mode, x.PagesMigratedToRam.ToString("N0"), (x.BytesThroughRam / 1048576.0).ToString("N1"), (x.BytesOverAlias / 1048576.0).ToString("N1"), x.Ms.ToString("N1"), x.DataOk ? "ok" : "WRONG"];

    /// <summary>`hmmsim bench register`: time and bytes to register N GiB of device-private memory per design.</summary>
    private static Command RegisterCommand()
    {
        var cmd = new Command("register", "Register device-private memory in each design: time, model bytes, kernel struct pages. Example: hmmsim bench register --size 1TiB");
        var design = CliOptions.Design("both");
        var size = CliOptions.Size("--size", "Device-private memory to register.", 1UL << 40, 1UL << 30, 16UL << 40, 1UL << 30);
        var legacy = CliOptions.LegacySize("--size-gib", 30, 1UL << 30, 16UL << 40, 1UL << 30);
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(size);
        cmd.Options.Add(legacy);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            ulong bytes = CliOptions.SizeValue(r, size, legacy);
            var designs = r.GetValue(design)!;
            var rows = Progress.Run($"registering {Units.Human(bytes)}", r.GetValue(json), output, () => RegisterWorkload.Run(bytes)).Where(x => designs.Contains(x.Design)).ToList();
            string[] header = ["design", "result", "ms", "model bytes", "model bytes after 2 pages used", "kernel struct pages"];
            string[] Cells(RegisterWorkload.Row x) => [CliOptions.Name(x.Design), x.Error == Errno.None ? "ok" : x.Error.ToString(), x.Ms.ToString("N2"), x.ModelBytes.ToString("N0"),
                x.ModelBytesAfterFirstUse.ToString("N0"), $"{x.KernelStructPageBytes / 1048576.0:N0} MiB"];
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench register", path, () => HtmlReport.ForTable($"hmmsim bench register — {Units.Human(bytes)}", HostInfo.Describe(), header, [.. rows.Select(Cells)]), r.InvocationConfiguration.Error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(Machine(designs[0])),
                    sizeBytes = bytes,
                    rows = rows.Select(x => new { design = x.Design.ToString(), bytes = x.Bytes, error = x.Error.ToString(), ms = x.Ms, modelBytes = x.ModelBytes, kernelStructPageBytes = x.KernelStructPageBytes, modelBytesAfterFirstUse = x.ModelBytesAfterFirstUse }),
                }));
                return 0;
            }
            var table = Title(new Table(), $"registering {Units.Human(bytes)} of device-private memory (one run each)", Machine(designs[0]));
            foreach (var h in header)
                table.AddColumn(Terminal.Column(h, right: h is not "design" and not "result"));
            foreach (var x in rows)
                table.AddRow([.. Cells(x).Select(Markup.Escape)]);
            RunCommand.Console(output).Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench soak`: peak RSS over many migrate rounds, managed heap over many machines.</summary>
    private static Command SoakCommand()
    {
        var cmd = new Command("soak", "Memory that stays flat: rounds of {mmap, fill, migrate to the device and back, munmap}, then machines created and disposed; peak RSS (VmHWM), RSS and the managed heap after a full GC. Example: hmmsim bench soak --rounds 200 --machines 50 --size 64MiB");
        var design = DesignOption();
        var rounds = new Option<int>("--rounds") { Description = "Rounds on one machine.", DefaultValueFactory = _ => 200 };
        var machines = new Option<int>("--machines") { Description = "Machines created, used once and disposed.", DefaultValueFactory = _ => 50 };
        var size = CliOptions.Size("--size", "Buffer size.", 64UL << 20, 1UL << 20, 1UL << 30, 1UL << 20);
        var legacy = CliOptions.LegacySize("--size-mib", 20, 1UL << 20, 1UL << 30, 1UL << 20);
        var json = CliOptions.Json();
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(rounds);
        cmd.Options.Add(machines);
        cmd.Options.Add(size);
        cmd.Options.Add(legacy);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            ulong bytes = CliOptions.SizeValue(r, size, legacy);
            int n = r.GetValue(rounds), k = r.GetValue(machines);
            if (n is < 1 or > 100_000 || k is < 0 or > 10_000)
            {
                error.WriteLine("hmmsim bench soak: --rounds 1..100000, --machines 0..10000");
                return 2;
            }
            var designs = r.GetValue(design)!;
            var results = Progress.Run($"{n} rounds of {Units.Human(bytes)}, {k} machines", r.GetValue(json), output, () =>
                designs.TakeWhile(_ => !Interrupt.Requested).Select(d => (Design: d, Samples: HmmWorkloads.Soak(d, n, k, bytes))).ToList());
            int exit = Interrupt.Requested ? Interrupt.ExitCode : 0;
            string[] header = ["design", "after", "peak RSS MiB", "RSS MiB", "managed heap MiB"];
            var cells = results.SelectMany(x =>
                x.Samples.Rounds.Select(s => (IReadOnlyList<string>)[CliOptions.Name(x.Design), $"round {s.Round}", (s.PeakRssBytes >> 20).ToString("N0"), (s.RssBytes >> 20).ToString("N0"), (s.ManagedBytes >> 20).ToString("N0")])
                .Concat(x.Samples.Machines.Select(s => (IReadOnlyList<string>)[CliOptions.Name(x.Design), $"machine {s.Round} disposed", (s.PeakRssBytes >> 20).ToString("N0"), (s.RssBytes >> 20).ToString("N0"), (s.ManagedBytes >> 20).ToString("N0")]))).ToList();
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench soak", path, () => HtmlReport.ForTable($"hmmsim bench soak — {Units.Human(bytes)}", HostInfo.Describe(), header, cells), error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(Machine(designs[0])),
                    sizeBytes = bytes,
                    designs = results.Select(x => new
                    {
                        design = x.Design.ToString(),
                        rounds = x.Samples.Rounds.Select(s => new { round = s.Round, peakRssBytes = s.PeakRssBytes, rssBytes = s.RssBytes, managedBytes = s.ManagedBytes }),
                        machines = x.Samples.Machines.Select(s => new { machine = s.Round, peakRssBytes = s.PeakRssBytes, rssBytes = s.RssBytes, managedBytes = s.ManagedBytes }),
                    }),
                }));
                return exit;
            }
            var table = Title(new Table(), $"{Units.Human(bytes)}: mmap, fill, migrate to the device and back, munmap", Machine(designs[0]));
            foreach (var h in header)
                table.AddColumn(Terminal.Column(h, right: h.Contains("MiB", StringComparison.Ordinal)));
            foreach (var c in cells)
                table.AddRow([.. c.Select(Markup.Escape)]);
            RunCommand.Console(output).Write(table);
            return exit;
        });
        return cmd;
    }

    private static string Spread((double Median, double Min, double Max) s, string format) =>
        $"{s.Median.ToString(format)} ({s.Min.ToString(format)}-{s.Max.ToString(format)})";

    /// <summary>`hmmsim bench scale`: H200- and MI300X-class GPU memory beside 2 TiB of RAM, both designs.</summary>
    private static Command ScaleCommand()
    {
        var cmd = new Command("scale", "GPU memory of real shapes (8 x 141 GiB H200-class, 8 x 192 GiB MI300X-class) registered beside 2 TiB of RAM (both designs by default); a same-filled working set migrated to the device and back, every page verified. Example: hmmsim bench scale --working-set 16GiB");
        // Whole 2 MiB PMDs: the working set is THP-mapped, and a window is a whole number of them.
        const ulong pmd = 2UL << 20;
        var size = CliOptions.Size("--working-set", "Migrated to the device and back (one word per page), 2 MiB to 1 TiB in whole 2 MiB PMDs.", 256UL << 30, pmd, 1UL << 40, pmd);
        var legacySize = CliOptions.LegacySize("--working-set-gib", 30, 1UL << 30, 1UL << 40);
        var window = CliOptions.Size("--window", "Per MIGRATE_TO_DEV / MIGRATE_TO_SYS ioctl, 2 MiB to 1 GiB in whole 2 MiB PMDs.", ScaleWorkload.DefaultWindowBytes, pmd, 1UL << 30, pmd);
        var legacyWindow = CliOptions.LegacySize("--window-mib", 20, pmd, 1UL << 30, pmd);
        var design = CliOptions.Design("both");
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var report = CliOptions.Report();
        cmd.Options.Add(design);
        cmd.Options.Add(size);
        cmd.Options.Add(legacySize);
        cmd.Options.Add(window);
        cmd.Options.Add(legacyWindow);
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var error = r.InvocationConfiguration.Error;
            ulong bytes = CliOptions.SizeValue(r, size, legacySize);
            ulong windowBytes = CliOptions.SizeValue(r, window, legacyWindow);
            string workingSet = Units.Human(bytes), windowSize = Units.Human(windowBytes);
            var registrations = new List<ScaleWorkload.Registration>();
            var migrations = new List<ScaleWorkload.Migration>();
            double firstTouchNs = 0;
            // The CLI's progress line (live on a terminal, every ten seconds otherwise), as every long verb has.
            Progress.Run($"bench scale, {workingSet} working set", r.GetValue(json), output, () =>
            {
                firstTouchNs = ScaleWorkload.HostFirstTouchNsPerPage();
                // Ctrl-C: no new design starts, and the one running stops at its next window.
                foreach (var d in r.GetValue(design)!.TakeWhile(_ => !Interrupt.Requested))
                {
                    Progress.Tick?.Invoke($"{d}: registering");
                    registrations.AddRange(ScaleWorkload.Register(d));
                    migrations.Add(ScaleWorkload.Migrate(d, bytes, windowBytes, (what, f) => Progress.Tick?.Invoke($"{d}: {what} {f:P0}")));
                }
                return 0;
            });
            int exit = Interrupt.Requested ? Interrupt.ExitCode : 0;
            var scaleMachine = new MachineConfig { RamBytes = ScaleWorkload.RamBytes, HugetlbPages = 0 };
            string regTitle = "device-private memory registered beside 2 TiB of RAM";
            string[] regHeader = ["design", "shape", "GiB", "ms", "kernel struct pages MiB", "kernel memmap pages initialised", "model memmap MiB", "model pages initialised"];
            var regCells = registrations.Select(x => (IReadOnlyList<string>)[x.Design.ToString(), x.Shape, (x.DeviceBytes >> 30).ToString("N0"), x.Ms.ToString("N1"),
                (x.KernelStructPageBytes >> 20).ToString("N0"), x.KernelMemmapPagesInitialised.ToString("N0"), (x.ModelMemmapBytes / 1048576.0).ToString("N1"),
                x.ModelMemmapPagesInitialised.ToString("N0")]).ToList();
            string migTitle = $"{workingSet} of same-filled pages to a device and back, every page verified (pages/s per {windowSize} window: median (min-max))";
            string[] migHeader = ["design", "sys->dev pages/s", "dev->sys pages/s", "model s", "peak RSS MiB", "B/page", "verified"];
            var migCells = migrations.Select(x => (IReadOnlyList<string>)[x.Design.ToString(), $"{x.SysToDevWindow.Median:N0} ({x.SysToDevWindow.Min:N0}-{x.SysToDevWindow.Max:N0})",
                $"{x.DevToSysWindow.Median:N0} ({x.DevToSysWindow.Min:N0}-{x.DevToSysWindow.Max:N0})", x.ModelSeconds.ToString("N1"), (x.PeakRssBytes >> 20).ToString("N0"),
                x.PeakRssBytesPerPage.ToString("N0"), x.PagesVerified.ToString("N0")]).ToList();
            string firstTouch = $"a first touch of newly mapped memory costs {firstTouchNs:N0} ns per 4 KiB page";
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench scale", path, () => new HtmlReport($"hmmsim bench scale — {workingSet} working set")
                    .Paragraph($"Host: {HostInfo.Describe()}; {firstTouch}. Model machine: {CliOptions.Describe(scaleMachine)}.", "sub")
                    .Heading(regTitle).Table(regHeader, regCells).Heading(migTitle).Table(migHeader, migCells), error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(scaleMachine),
                    ramBytes = ScaleWorkload.RamBytes,
                    windowBytes,
                    interrupted = exit != 0,
                    hostFirstTouchNsPerPage = firstTouchNs,
                    registrations = registrations.Select(x => new
                    {
                        design = x.Design.ToString(),
                        shape = x.Shape,
                        deviceBytes = x.DeviceBytes,
                        ms = x.Ms,
                        kernelStructPageBytes = x.KernelStructPageBytes,
                        kernelMemmapPagesInitialised = x.KernelMemmapPagesInitialised,
                        modelMemmapBytes = x.ModelMemmapBytes,
                        modelMemmapPagesInitialised = x.ModelMemmapPagesInitialised,
                    }),
                    migrations = migrations.Select(x => new
                    {
                        design = x.Design.ToString(),
                        workingSetBytes = x.Bytes,
                        pages = x.Pages,
                        sysToDevPagesPerSec = x.SysToDevPagesPerSec,
                        sysToDevWindowPagesPerSecMedian = x.SysToDevWindow.Median,
                        sysToDevWindowPagesPerSecMin = x.SysToDevWindow.Min,
                        sysToDevWindowPagesPerSecMax = x.SysToDevWindow.Max,
                        devToSysPagesPerSec = x.DevToSysPagesPerSec,
                        devToSysWindowPagesPerSecMedian = x.DevToSysWindow.Median,
                        devToSysWindowPagesPerSecMin = x.DevToSysWindow.Min,
                        devToSysWindowPagesPerSecMax = x.DevToSysWindow.Max,
                        fillOfMigrateToDevMedian = x.FillOfMigrateToDev.Median,
                        fillOfMigrateToDevMin = x.FillOfMigrateToDev.Min,
                        fillOfMigrateToDevMax = x.FillOfMigrateToDev.Max,
                        modelSeconds = x.ModelSeconds,
                        teardownSeconds = x.TeardownSeconds,
                        gcGen2Collections = x.GcGen2Collections,
                        gcPauseSeconds = x.GcPauseSeconds,
                        peakRssBytes = x.PeakRssBytes,
                        peakRssBeforeTeardownBytes = x.PeakRssBeforeTeardownBytes,
                        baseRssBytes = x.BaseRssBytes,
                        peakRssBytesPerPage = x.PeakRssBytesPerPage,
                        peakRssIsPerDesign = x.PeakRssReset,
                        pageDataBytes = x.PageDataBytes,
                        sameFilledPages = x.SameFilledPages,
                        structPageBytesKernel = x.StructPageBytesKernel,
                        structPageBytesModel = x.ModelMemmapBytes,
                        structPagesInitialisedModel = x.ModelMemmapPagesInitialised,
                        pagesVerified = x.PagesVerified,
                    }),
                }));
                return exit;
            }
            // Names on the left (design, and the registration's shape), figures on the right.
            var reg = Title(new Table(), regTitle, scaleMachine);
            var mig = Title(new Table(), migTitle, scaleMachine);
            foreach (var (table, header, cells, names) in new[] { (reg, regHeader, regCells, 2), (mig, migHeader, migCells, 1) })
            {
                for (int c = 0; c < header.Length; c++)
                    table.AddColumn(Terminal.Column(header[c], right: c >= names));
                foreach (var row in cells)
                    table.AddRow([.. row.Select(Markup.Escape)]);
            }
            var console = RunCommand.Console(output);
            console.Write(reg);
            console.Write(mig);
            console.WriteLine($"host: {firstTouch}");
            if (exit != 0)
                console.WriteLine("interrupted: the figures are those of the part of the working set that moved before Ctrl-C");
            return exit;
        });
        return cmd;
    }

    /// <summary>`hmmsim bench checks`: DEBUG_VM cost per CPU access, checks on against off, on a 1 TiB machine.</summary>
    private static Command ChecksCommand()
    {
        var cmd = new Command("checks", "What the DEBUG_VM checker costs per CPU access on a 1 TiB machine with a sparsely touched 512 GiB mapping: checks on against off in the same run, and the full walk (median of five, warm). Example: hmmsim bench checks --json");
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        var report = CliOptions.Report();
        cmd.Options.Add(json);
        cmd.Options.Add(report);
        cmd.SetAction(r =>
        {
            var output = r.InvocationConfiguration.Output;
            var x = Progress.Run("checks on and off over a 1 TiB machine", r.GetValue(json), () => ChecksWorkload.Run());
            // After Ctrl-C the warm-ups were cut short: the figures print, but the exit says they are partial.
            int exit = Interrupt.Requested ? Interrupt.ExitCode : 0;
            var machine = new MachineConfig { RamBytes = x.RamBytes, HugetlbPages = 0 };
            string title = $"CPU reads of a sparsely touched {x.MappingBytes >> 30} GiB mapping on a {x.RamBytes >> 30} GiB machine";
            List<IReadOnlyList<string>> cells =
            [
                ["checks off, us per access: median (min-max)", $"{x.OffUs.Median:N2} ({x.OffUs.Min:N2}-{x.OffUs.Max:N2})"],
                ["checks on (local), us per access: median (min-max)", $"{x.OnUs.Median:N2} ({x.OnUs.Min:N2}-{x.OnUs.Max:N2})"],
                ["on / off, median of rounds", $"{x.OnOverOffMedian:N2}x"],
                ["full walk (teardown, on demand), ms: median of five", x.FullWalkMs.ToString("N2")],
            ];
            if (r.GetValue(report) is { } path && !ReportWriter.TryWrite("bench checks", path,
                () => HtmlReport.ForTable($"hmmsim bench checks — {title}", HostInfo.Describe() + "; model machine: " + CliOptions.Describe(machine), ["figure", "value"], cells), r.InvocationConfiguration.Error))
                return 2;
            if (r.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    host = HostInfo.Describe(),
                    machine = CliOptions.Describe(machine),
                    ramBytes = x.RamBytes,
                    mappingBytes = x.MappingBytes,
                    pagesTouched = x.PagesTouched,
                    accessesPerRound = x.Accesses,
                    offUsPerAccessMedian = x.OffUs.Median,
                    offUsPerAccessMin = x.OffUs.Min,
                    offUsPerAccessMax = x.OffUs.Max,
                    onUsPerAccessMedian = x.OnUs.Median,
                    onUsPerAccessMin = x.OnUs.Min,
                    onUsPerAccessMax = x.OnUs.Max,
                    onOverOffMedian = x.OnOverOffMedian,
                    fullWalkMs = x.FullWalkMs,
                }));
                return exit;
            }
            var table = Title(new Table(), title, machine).AddColumn("figure").AddColumn(new TableColumn("value").RightAligned());
            foreach (var c in cells)
                table.AddRow(Markup.Escape(c[0]), Markup.Escape(c[1]));
            RunCommand.Console(output).Write(table);
            return exit;
        });
        return cmd;
    }

    private static string Ratio((double Median, double Min, double Max) r) => $"{r.Median:P1} ({r.Min:P0}-{r.Max:P0})";

    private static string Size(ulong bytes) => bytes >= 1UL << 20 ? $"{bytes >> 20} MiB" : $"{bytes >> 10} KiB";
}
