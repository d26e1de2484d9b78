using System.CommandLine;
using System.Text.Json;
using HmmSim.Workloads;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>`hmmsim bench mm`: the mm-core figures, measured once (BenchmarkDotNet in bench/ for rigour).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure the model. Example: hmmsim bench mm --size-mib 1024");
        var mm = new Command("mm", "Anonymous fault rates (4 KiB and THP), fork, page-table walk, metadata per page.");
        var size = new Option<int>("--size-mib") { Description = "Size of the populated region in MiB.", DefaultValueFactory = _ => 1024 };
        var json = new Option<bool>("--json") { Description = "Print JSON instead of a table." };
        mm.Options.Add(size);
        mm.Options.Add(json);
        mm.SetAction(r =>
        {
            int mib = r.GetValue(size);
            if (mib <= 0 || mib % 2 != 0 || mib > 4096)
            {
                Console.Error.WriteLine($"hmmsim bench mm: --size-mib must be an even number from 2 to 4096, not {mib}");
                return 2;
            }
            var figures = MmWorkloads.Measure((ulong)mib * MmWorkloads.Mib);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(figures.Select(f => new { name = f.Name, value = f.Value, unit = f.Unit })));
                return 0;
            }
            var table = new Table().AddColumn("figure").AddColumn(new TableColumn("value").RightAligned()).AddColumn("unit");
            foreach (var f in figures)
                table.AddRow(Markup.Escape(f.Name), f.Value.ToString("N1"), f.Unit);
            AnsiConsole.Write(table);
            return 0;
        });
        bench.Subcommands.Add(mm);
        return bench;
    }
}
