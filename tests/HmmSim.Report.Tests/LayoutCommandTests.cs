using System.Text.Json;
using System.Xml.Linq;
using HmmSim.Cli;
using HmmSim.Cli.Layout;

namespace HmmSim.Report.Tests;

public sealed class LayoutCommandTests
{
    private static readonly XNamespace _svg = "http://www.w3.org/2000/svg";

    private static (int Exit, string Out, string Err) Layout(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        int exit = LayoutCommand.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void DefaultIsTheSeedVmInBothDesigns()
    {
        var (exit, output, err) = Layout();
        Assert.Equal(0, exit);
        Assert.Equal("", err);
        Assert.Contains("PhysicalAddressSpace", output, StringComparison.Ordinal);
        Assert.Contains("DeviceAddressSpace", output, StringComparison.Ordinal);
        Assert.Contains("00000000-1ffffffff : System RAM", output, StringComparison.Ordinal);
        Assert.Contains("200000000-7ffffffffff : PCI Bus 0000:00", output, StringComparison.Ordinal);
        Assert.Contains("device-private address space: none — device-private pages live in the physical space (see iomem)", output, StringComparison.Ordinal);
        Assert.Contains("request_free_mem_region of 256 MiB failed (-ERANGE)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void RedesignListsTheDevicePrivatePagemaps()
    {
        var (exit, output, _) = Layout("--design", "DeviceAddressSpace");
        Assert.Equal(0, exit);
        Assert.DoesNotContain("PhysicalAddressSpace", output, StringComparison.Ordinal);
        Assert.Contains("device-private address space [0x0, 0x400000000000)", output, StringComparison.Ordinal);
        Assert.Contains("0x0-0xffff : hmm_dmirror0 (bytes 0x0-0xfffffff, 256 MiB)", output, StringComparison.Ordinal);
        Assert.Contains("0x10000-0x1ffff : hmm_dmirror1 (bytes 0x10000000-0x1fffffff, 256 MiB)", output, StringComparison.Ordinal);
        // The physical space is unchanged: nothing device-private in /proc/iomem.
        Assert.DoesNotContain(": hmm_dmirror\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public void TodaysDesignWithRoomPutsDevicePrivateMemoryInIomem()
    {
        var (exit, output, _) = Layout("--design", "PhysicalAddressSpace", "--phys-bits", "46", "--pci-window", "none");
        Assert.Equal(0, exit);
        // request_free_mem_region placed the chunk in the physical space (below the boot-time BARs).
        Assert.Matches(new System.Text.RegularExpressions.Regex(@"(?m)^3fff[0-9a-f]{8}-3fff[0-9a-f]{8} : hmm_dmirror$"), output);
        Assert.Contains("device-private address space: none", output, StringComparison.Ordinal);
    }

    [Fact]
    public void PciWindowsAndArm64AreHonoured()
    {
        var (exit, output, err) = Layout("--arch", "Arm64", "--phys-bits", "48", "--ram", "16GiB", "--pci-window", "16GiB:1TiB", "--pci-window", "0x800000000000:2^46");
        Assert.True(exit == 0, err);
        Assert.Contains("arm64, 48-bit physical, 16 GiB RAM", output, StringComparison.Ordinal);
        Assert.Contains("400000000-103ffffffff : PCI Bus 0000:00", output, StringComparison.Ordinal);
        Assert.Contains("800000000000-bfffffffffff : PCI Bus 0000:00", output, StringComparison.Ordinal);
        Assert.Contains("device-private address space [0x0, 0x1000000000000)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void SvgParsesAsXmlAndDrawsBothSpaces()
    {
        using var dir = new TempDir();
        string path = dir.File("layout.svg");
        var (exit, output, err) = Layout("--svg", path);
        Assert.True(exit == 0, err);
        Assert.Contains("wrote " + path, output, StringComparison.Ordinal);
        var doc = XDocument.Load(path);
        Assert.Equal(_svg + "svg", doc.Root!.Name);
        var designs = doc.Descendants(_svg + "g").Where(g => g.Attribute("data-design") is not null).ToList();
        Assert.Equal(["PhysicalAddressSpace", "DeviceAddressSpace"], designs.Select(g => g.Attribute("data-design")!.Value));
        string Spaces(XElement g) => string.Join(",", g.Descendants(_svg + "g").Select(s => s.Attribute("data-space")?.Value).OfType<string>());
        Assert.Equal("physical", Spaces(designs[0]));
        Assert.Equal("physical,device-private", Spaces(designs[1]));
        var texts = doc.Descendants(_svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("System RAM", texts);
        Assert.Contains("PCI Bus 0000:00", texts);
        Assert.Contains("hmm_dmirror0", texts);
        Assert.Contains("hmm_dmirror1", texts);
        Assert.Contains("0x200000000", texts);
        Assert.Contains("8 GiB", texts);
        Assert.Contains(texts, t => t.Contains("none — device-private pages live in the physical space", StringComparison.Ordinal));
        // Self-contained: no links, no external fonts or images.
        string raw = File.ReadAllText(path);
        Assert.DoesNotContain("href", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("@import", raw, StringComparison.Ordinal);
        Assert.DoesNotContain("url(", raw, StringComparison.Ordinal);
    }

    private static double Attr(XElement e, string name) => double.Parse(e.Attribute(name)!.Value, System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public void BarsAreDrawnInsideThePciWindowWithTheirNames()
    {
        using var dir = new TempDir();
        string path = dir.File("layout.svg");
        Assert.Equal(0, Layout("--design", "today", "--svg", path).Exit);
        var doc = XDocument.Load(path);
        var physical = doc.Descendants(_svg + "g").Single(g => g.Attribute("data-space")?.Value == "physical");
        var window = physical.Elements(_svg + "g").Single(g => g.Elements(_svg + "text").Any(t => t.Value == "PCI Bus 0000:00")).Element(_svg + "rect")!;
        double wx = Attr(window, "x"), wr = wx + Attr(window, "width");
        var bars = physical.Elements(_svg + "g").Where(g => g.Attribute("class")?.Value == "bar").ToList();
        // The seeds' VM: two 1 GiB BARs at the top of the window (what /proc/iomem lists under it).
        Assert.Equal(2, bars.Count);
        Assert.Equal(["0000:04:00.0 BAR1", "0000:03:00.0 BAR1"], bars.Select(b => b.Element(_svg + "text")!.Value));
        foreach (var b in bars)
        {
            var r = b.Element(_svg + "rect")!;
            Assert.InRange(Attr(r, "x"), wx, wr);
            Assert.InRange(Attr(r, "x") + Attr(r, "width"), wx, wr);
            Assert.Contains("[0x7f", b.Element(_svg + "title")!.Value, StringComparison.Ordinal);
        }
        // The window's own label sits left of the BARs, in its unassigned part.
        var label = physical.Descendants(_svg + "text").Single(t => t.Value == "PCI Bus 0000:00");
        Assert.True(Attr(label, "x") < Attr(bars[0].Element(_svg + "rect")!, "x"));
        var (_, json, _) = Layout("--design", "today", "--json");
        using var j = JsonDocument.Parse(json);
        Assert.Equal(2, j.RootElement[0].GetProperty("bars").GetArrayLength());
    }

    [Theory]
    [InlineData(false, "--design", "both")]
    [InlineData(true, "--phys-bits", "46", "--pci-window", "8GiB:1TiB", "--pci-window", "2TiB:1TiB")]
    public void TickLabelsStayOnOneRow(bool crowded, params string[] args)
    {
        int ticks = 0, labels = 0;
        using var dir = new TempDir();
        string path = dir.File("layout.svg");
        Assert.Equal(0, Layout([.. args, "--svg", path]).Exit);
        var doc = XDocument.Load(path);
        foreach (var space in doc.Descendants(_svg + "g").Where(g => g.Attribute("data-space") is not null))
        {
            var hexLabels = space.Elements(_svg + "text").Where(t => t.Attribute("font-family")?.Value == "monospace").ToList();
            Assert.NotEmpty(hexLabels);
            Assert.Single(hexLabels.Select(t => t.Attribute("y")!.Value).Distinct());
            // Every boundary keeps its tick even when its label is thinned out; both ends are labelled.
            Assert.True(space.Elements(_svg + "line").Count() >= hexLabels.Count);
            Assert.Equal("0x0", hexLabels.First(t => Attr(t, "x") == hexLabels.Min(h => Attr(h, "x"))).Value);
            ticks += space.Elements(_svg + "line").Count();
            labels += hexLabels.Count;
        }
        // Where boundaries crowd (BARs and small resources side by side) labels are thinned, not stacked.
        if (crowded)
            Assert.True(ticks > labels, $"{ticks} ticks, {labels} labels: nothing was thinned");
    }

    [Fact]
    public void JsonHasBothDesigns()
    {
        var (exit, output, _) = Layout("--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var arr = doc.RootElement.EnumerateArray().ToList();
        Assert.Equal(2, arr.Count);
        Assert.Equal(JsonValueKind.Null, arr[0].GetProperty("devicePrivate").ValueKind);
        var ranges = arr[1].GetProperty("devicePrivate").GetProperty("ranges").EnumerateArray()
            .Where(r => r.GetProperty("kind").GetString() == "DevicePrivate").Select(r => r.GetProperty("name").GetString()).ToList();
        Assert.Equal(["hmm_dmirror0", "hmm_dmirror1"], ranges);
        Assert.Contains("System RAM", arr[1].GetProperty("iomem").GetString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--arch", "sparc")]
    [InlineData("--arch", "1")]
    [InlineData("--phys-bits", "99")]
    [InlineData("--phys-bits", "lots")]
    [InlineData("--ram", "lots")]
    [InlineData("--ram", "5MiB")]
    [InlineData("--ram", "16TiB", "--phys-bits", "43")]
    [InlineData("--pci-window", "8GiB")]
    [InlineData("--pci-window", "0:1GiB")]
    [InlineData("--pci-window", "8GiB:16TiB")]
    [InlineData("--pci-window", "8GiB:1TiB", "--pci-window", "9GiB:1GiB")]
    [InlineData("--design", "neither")]
    [InlineData("--bogus")]
    [InlineData("--phys-bits")]
    public void BadOptionsAreOneMessageAndExitCode2(params string[] args)
    {
        var (exit, output, err) = Layout(args);
        Assert.Equal(2, exit);
        Assert.Equal("", output);
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("hmmsim layout: ", lines[0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("8GiB", 8UL << 30)]
    [InlineData("8 GiB", 8UL << 30)]
    [InlineData("512M", 512UL << 20)]
    [InlineData("0x200000000", 8UL << 30)]
    [InlineData("2^43", 1UL << 43)]
    [InlineData("4096", 4096UL)]
    public void SizesParse(string text, ulong expected)
    {
        Assert.True(Units.TryParseSize(text, out ulong v));
        Assert.Equal(expected, v);
    }

    [Theory]
    [InlineData(8UL << 30, "8 GiB")]
    [InlineData((8UL << 40) - (8UL << 30), "8184 GiB")]
    [InlineData(0x210000000UL, "8.25 GiB")]
    [InlineData(0UL, "0 B")]
    public void HumanUnitsAreExact(ulong bytes, string expected) => Assert.Equal(expected, Units.Human(bytes));
}
