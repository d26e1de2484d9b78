using System.Diagnostics;
using System.Text.Json;

namespace HmmSim.Cli.Tests;

/// <summary>The conventions of issue 15: parse errors with suggestions, bad input as one line and exit
/// 2, one option vocabulary, every output naming its machine, --set, decode.</summary>
public class CliConventionTests
{
    [Fact]
    public void UnknownVerbSuggestsTheNearestCommand()
    {
        var (exit, output, error) = Cli.Run("selftst");
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Equal("hmmsim: 'selftst' is not a hmmsim command; did you mean 'selftest'? (see hmmsim --help)", error.Trim());
    }

    [Fact]
    public void UnknownVerbWithNoNeighbourListsTheCommands()
    {
        var (exit, _, error) = Cli.Run("frob");
        Assert.Equal(2, exit);
        Assert.StartsWith("hmmsim: 'frob' is not a hmmsim command; known: ", error, StringComparison.Ordinal);
        Assert.Contains("run", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Required command", error, StringComparison.Ordinal);
    }

    [Fact]
    public void OptionLikeTokenIsAnUnknownOptionNotAFile()
    {
        var (exit, _, error) = Cli.Run("run", "--jsno");
        Assert.Equal(2, exit);
        Assert.Contains("'--jsno' is not an option of hmmsim run; did you mean '--json'?", error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void EndlessFileIsRejectedWithoutReadingItAll()
    {
        var (exit, _, error) = Cli.Run("run", "/dev/zero");
        Assert.Equal(2, exit);
        Assert.Equal("hmmsim run: /dev/zero: larger than 128 MiB (or endless, like a device file): a scenario is a JSON file", error.Trim());
    }

    [Fact]
    public void DirectoryIsRejected()
    {
        string dir = Path.GetTempPath().TrimEnd('/');
        var (exit, _, error) = Cli.Run("run", dir);
        Assert.Equal(2, exit);
        Assert.Equal($"hmmsim run: {dir}: is a directory; give a scenario JSON file", error.Trim());
    }

    [Fact]
    public void PhysicalAddressBitsTheArchitectureCannotHaveFailTheFileCheckAtTheField()
    {
        string path = Cli.TempScenario("""
            {
              "machine": {
                "physicalAddressBits": 52
              },
              "steps": []
            }
            """);
        var (exit, output, error) = Cli.Run("run", path);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Equal($"hmmsim run: {path}:3:28: machine: PhysicalAddressBits must be 32..46 on X86_64, not 52", error.Trim());
    }

    [Theory]
    [InlineData("66MiB", false)]
    [InlineData("68MiB", true)]
    public void ScenarioRamFollowsTheMachinesFourMiBRule(string ram, bool accepted)
    {
        string path = Cli.TempScenario($$"""
            { "machine": { "ramBytes": "{{ram}}", "designs": "DeviceAddressSpace", "hugetlbPages": 0 }, "steps": [] }
            """);
        var (exit, _, error) = Cli.Run("run", path, "--quiet");
        Assert.Equal(accepted ? 0 : 2, exit);
        if (!accepted)
            Assert.Contains("multiple of 4 MiB", error, StringComparison.Ordinal);
    }

    [Fact]
    public void RunFileWritesTheReport()
    {
        string html = Path.Combine(Path.GetTempPath(), $"cli15-report-{Guid.NewGuid():N}.html");
        try
        {
            var (exit, _, _) = Cli.Run("run", Path.Combine(Cli.ExamplesDir, "selftest-migrate.json"), "--report", html, "--quiet");
            Assert.Equal(0, exit);
            string text = File.ReadAllText(html);
            Assert.Contains("hmmsim run — selftest migrate", text, StringComparison.Ordinal);
            Assert.Contains("Machine: x86-64, 46-bit physical, 8 GiB RAM", text, StringComparison.Ordinal);
            Assert.Contains("redesign (DeviceAddressSpace)", text, StringComparison.Ordinal);
            Assert.Contains("<svg", text, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(html);
        }
    }

    [Fact]
    public void RunJsonIsOneObjectSchemaForFilesAndTheBuiltIn()
    {
        var (_, fileJson, _) = Cli.Run("run", Path.Combine(Cli.ExamplesDir, "selftest-snapshot.json"), "--json", "--design", "redesign");
        using var file = JsonDocument.Parse(fileJson);
        foreach (var key in new[] { "file", "scenario", "machine", "passed", "interrupted", "exitCode", "designs" })
            Assert.True(file.RootElement.TryGetProperty(key, out _), key);
        Assert.Equal(["DeviceAddressSpace"], file.RootElement.GetProperty("designs").EnumerateArray().Select(d => d.GetProperty("design").GetString()));
        foreach (var key in new[] { "design", "passed", "verdict", "pagesToDevice", "pagesToRam", "invariantChecks" })
            Assert.True(file.RootElement.GetProperty("designs")[0].TryGetProperty(key, out _), key);
    }

    [Fact]
    public void SetOverridesTheBuiltInMachine()
    {
        // On 46 bits the PCI window above RAM leaves room: today's design probes the device too.
        var (exit, output, _) = Cli.Run("run", "--json", "--set", "machine.physicalAddressBits=46", "--set", "machine.pciWindow=none");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Contains("46-bit", doc.RootElement.GetProperty("machine").GetString(), StringComparison.Ordinal);
        Assert.All(doc.RootElement.GetProperty("designs").EnumerateArray(), d => Assert.True(d.GetProperty("deviceProbed").GetBoolean()));
    }

    [Theory]
    [InlineData("machine.frob=1", "unknown key")]
    [InlineData("machine.physicalAddressBits=99", "expected a number of bits")]
    [InlineData("variants.Zone=Nowhere", "expected")]
    [InlineData("noequals", "expected key=value")]
    public void BadSetIsOneMessage(string set, string problem)
    {
        var (exit, output, error) = Cli.Run("run", "--set", set);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        Assert.Contains(problem, error, StringComparison.Ordinal);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void DesignVocabularyIsTheSameOnEveryVerb()
    {
        Assert.Equal(0, Cli.Run("selftest", "--design", "today", "--filter", "hmm_device_private.open_close", "--list").Exit);
        Assert.Equal(0, Cli.Run("layout", "--design", "redesign", "--json").Exit);
        Assert.Equal(0, Cli.Run("bench", "register", "--design", "both", "--size", "1GiB", "--json").Exit);
        Assert.Equal(2, Cli.Run("bench", "fault", "--design", "tomorrow").Exit);
    }

    [Fact]
    public void FilterIsCaseInsensitiveAndListJsonIsJson()
    {
        var (exit, output, _) = Cli.Run("selftest", "--filter", "HMM2_DEVICE_PRIVATE.SNAPSHOT", "--list", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(2, doc.RootElement.GetProperty("total").GetInt32());
        Assert.All(doc.RootElement.GetProperty("cases").EnumerateArray(), c => Assert.EndsWith("hmm2_device_private.snapshot", c.GetProperty("name").GetString(), StringComparison.Ordinal));
    }

    [Fact]
    public void SelftestNamesItsMachine()
    {
        var (exit, output, _) = Cli.Run("selftest", "--design", "redesign", "--filter", "hmm_device_private.open_close");
        Assert.Equal(0, exit);
        Assert.Contains("# machine: x86-64, 46-bit physical, 8 GiB RAM", output, StringComparison.Ordinal);
    }

    [Fact]
    public void DecodeNamesEveryField()
    {
        var (exit, output, _) = Cli.Run("decode", "pagemap", "0x8100000000012345");
        Assert.Equal(0, exit);
        Assert.Contains("present      yes", output, StringComparison.Ordinal);
        Assert.Contains("exclusive    yes", output, StringComparison.Ordinal);
        Assert.Contains("pfn          0x12345", output, StringComparison.Ordinal);

        var swap = Cli.Run("decode", "swap", "0x7000000000000010", "--json").Out;
        using var doc = JsonDocument.Parse(swap);
        Assert.Equal("SWP_DEVICE_WRITE", doc.RootElement.GetProperty("fields").GetProperty("today").GetString());
        Assert.Equal("SWP_DEVICE_WRITE", DecodeCommand.TypeName(25, DevicePrivateDesign.DeviceAddressSpace));
        Assert.Equal("SWP_PTE_MARKER", DecodeCommand.TypeName(31, DevicePrivateDesign.DeviceAddressSpace));
        Assert.Equal("swap file 3", DecodeCommand.TypeName(3, DevicePrivateDesign.PhysicalAddressSpace));

        Assert.Contains("DevPrivateLocal|Write", Cli.Run("decode", "snapshot", "34").Out, StringComparison.Ordinal);
        Assert.Contains("HMM_PFN_VALID|HMM_PFN_WRITE", Cli.Run("decode", "hmm-pfn", "0xC000000000001234").Out, StringComparison.Ordinal);
        Assert.Equal(2, Cli.Run("decode", "pagemap", "0x1ffffffffffffffff").Exit);
    }

    [Fact]
    public void PagemapEntryDecodesWhatTheKernelWrites()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = DevicePrivateDesign.PhysicalAddressSpace, HugetlbPages = 0 });
        var p = m.CreateProcess();
        Assert.Equal(Errno.None, p.Mmap(0, 1UL << 16, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong a));
        Assert.True(p.Pagemap(a).IsNone);
        p.WriteInt32(a, 7);
        var present = p.Pagemap(a);
        Assert.True(present.Present);
        Assert.True(present.Exclusive);
        Assert.NotNull(present.Pfn);
        Assert.Null(present.SwapType);
        using var dev = p.OpenDmirror(0);
        Assert.Equal(Errno.None, dev.MigrateToDevice(a, 1, new byte[4096]).Error);
        var moved = p.Pagemap(a);
        Assert.True(moved.Swapped);
        Assert.False(moved.Present);
        Assert.StartsWith("SWP_DEVICE_", DecodeCommand.TypeName(moved.SwapType!.Value, DevicePrivateDesign.PhysicalAddressSpace), StringComparison.Ordinal);
        Assert.Equal(p.PagemapEntry(a), moved.Raw);
        Assert.StartsWith("swapped type=", moved.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData((byte)0x22, "DevPrivateLocal|Write")]
    [InlineData((byte)0x05, "Read|Pmd")]
    [InlineData((byte)0x31, "DevPrivateRemote|Read")]
    [InlineData((byte)0x00, "None")]
    [InlineData((byte)0xFF, "Error")]
    [InlineData((byte)0x90, "0x90")]
    public void DmirrorProtPrintsAsText(byte value, string text) => Assert.Equal(text, ((DmirrorProt)value).ToText());
}

/// <summary>The CLI as a process: what a terminal user and a script see (escape codes, width, Ctrl-C).</summary>
public class CliProcessTests
{
    private static ProcessStartInfo Start(params string[] args)
    {
        // The CLI's own build output (it has the runtimeconfig a referenced exe's copy here lacks),
        // in the configuration these tests were built in.
        var tfm = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd('/'));
        string dll = Path.Combine(Cli.RepoRoot, "src", "HmmSim.Cli", "bin", tfm.Parent!.Name, tfm.Name, "HmmSim.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("NO_COLOR");
        return psi;
    }

    /// <summary>SIGINT, as a terminal's Ctrl-C sends it.</summary>
    private static void SendCtrlC(System.Diagnostics.Process p)
    {
        using var kill = System.Diagnostics.Process.Start(new ProcessStartInfo("/bin/kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        kill.WaitForExit();
    }

    /// <summary>Runs the CLI, presses Ctrl-C after <paramref name="ms"/> and waits for it to end.</summary>
    private static async Task<(int Exit, string Out, string Err)> RunInterrupted(int ms, params string[] args)
    {
        using var p = System.Diagnostics.Process.Start(Start(args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await Task.Delay(ms);
        SendCtrlC(p);
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public void RedirectedOutputHasNoEscapeCodesAndFitsColumns()
    {
        var psi = Start("run");
        psi.Environment["COLUMNS"] = "72";
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        Assert.DoesNotContain('\u001b', output);
        var tableLines = output.Split('\n').Where(l => l.StartsWith('│') || l.StartsWith('┌')).ToList();
        Assert.NotEmpty(tableLines);
        Assert.All(tableLines, l => Assert.True(l.TrimEnd('\r').Length <= 72, l));
        // Cells wrap between words, never inside one.
        Assert.Contains("(PhysicalAddressSpace)", output, StringComparison.Ordinal);
        Assert.Contains("(DeviceAddressSpace)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void CtrlCPrintsAPartialSummaryAndExits130()
    {
        using var p = System.Diagnostics.Process.Start(Start("selftest", "--design", "today"))!;
        var lines = new List<string>();
        string? line;
        while ((line = p.StandardOutput.ReadLine()) is not null)
        {
            lines.Add(line);
            if (line.StartsWith("ok 2 ", StringComparison.Ordinal))
            {
                SendCtrlC(p);
                break;
            }
        }
        lines.AddRange(p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        p.WaitForExit();
        Assert.Equal(130, p.ExitCode);
        Assert.Contains(lines, l => l.StartsWith("# interrupted (Ctrl-C) after ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("# Totals: pass:", StringComparison.Ordinal));
        Assert.True(lines.Count(l => l.StartsWith("ok ", StringComparison.Ordinal)) < 76);
    }

    [Theory]
    [InlineData("hmmsim explore: interrupted (Ctrl-C) after ", "explore", "--seeds", "20")]
    [InlineData("proposals: interrupted (Ctrl-C)", "proposals")]
    public async Task CtrlCEndsTheLongVerbsWithWhatRan(string said, params string[] args)
    {
        // Each runs for a minute or more; the first Ctrl-C must end it with a partial summary, not be ignored.
        var (exit, stdout, stderr) = await RunInterrupted(3000, args);
        Assert.Equal(130, exit);
        Assert.Contains(said, stderr, StringComparison.Ordinal);
        Assert.Contains("design", stdout, StringComparison.Ordinal);   // the table of what ran
    }

    [Fact]
    public async Task CtrlCEndsBenchSoakAfterTheRoundInProgress()
    {
        var (exit, stdout, _) = await RunInterrupted(3000, "bench", "soak", "--rounds", "100000", "--machines", "50", "--size", "8MiB", "--json");
        Assert.Equal(130, exit);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        var design = Assert.Single(doc.RootElement.GetProperty("designs").EnumerateArray());
        // The round in progress is the last one sampled; no machine was started after Ctrl-C.
        Assert.InRange(design.GetProperty("rounds").EnumerateArray().Last().GetProperty("round").GetInt32(), 1, 99999);
        Assert.Empty(design.GetProperty("machines").EnumerateArray());
    }

    [Fact]
    public async Task CtrlCStopsBenchScaleAtAWindowAndReportsThePartThatMoved()
    {
        // 64 GiB takes the model tens of seconds; Ctrl-C comes well before it is done.
        var (exit, stdout, stderr) = await RunInterrupted(3000, "bench", "scale", "--working-set", "64GiB", "--design", "today", "--json");
        Assert.Equal(130, exit);
        using var doc = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.True(doc.RootElement.GetProperty("interrupted").GetBoolean(), stderr);
        foreach (var m in doc.RootElement.GetProperty("migrations").EnumerateArray())
        {
            ulong pages = m.GetProperty("pages").GetUInt64();
            Assert.True(pages < 64UL << 18, "the whole working set moved before Ctrl-C");
            Assert.Equal(pages << 12, m.GetProperty("workingSetBytes").GetUInt64());
            // What moved came back, and every page of it was checked both ways.
            Assert.Equal(2 * pages, m.GetProperty("pagesVerified").GetUInt64());
        }
    }
}
