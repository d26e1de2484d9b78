using System.Net;
using System.Text.Json;
using HmmSim.Cli.Layout;
using HmmSim.Cli.Report;
using HmmSim.Cli.Workloads;

namespace HmmSim.Report.Tests;

/// <summary>Pictures worth looking at: the layout drawing and the charts rendered by headless Chromium,
/// which measures every text element's box; no two labels may overlap and none may be cut by the
/// picture's edge.</summary>
public class TextOverlapChromiumTests
{
    private const string Measure = """
        <script>
        const svgs = [...document.querySelectorAll('svg')];
        const out = { overlaps: [], cut: [], texts: 0 };
        for (const svg of svgs) {
          const frame = svg.getBoundingClientRect();
          const boxes = [...svg.querySelectorAll('text')].map(t => ({ t: t.textContent, r: t.getBoundingClientRect() })).filter(b => b.r.width > 0);
          out.texts += boxes.length;
          for (let i = 0; i < boxes.length; i++) {
            const a = boxes[i].r;
            if (a.left < frame.left - 0.5 || a.right > frame.right + 0.5) out.cut.push(boxes[i].t);
            for (let j = i + 1; j < boxes.length; j++) {
              const b = boxes[j].r;
              if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
                out.overlaps.push(boxes[i].t + ' | ' + boxes[j].t);
            }
          }
        }
        const pre = document.createElement('pre'); pre.id = 'result'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
        </script>
        """;

    private static (List<string> Overlaps, List<string> Cut, int Texts) Render(string svg)
    {
        string chromium = Chromium.Find() ?? throw new InvalidOperationException(Chromium.InstallHint);
        using var dir = new TempDir();
        string html = Path.Combine(dir.Path, "page.html");
        File.WriteAllText(html, $"<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"margin:0\">{svg}{Measure}</body></html>");
        string dom = Chromium.DumpDom(chromium, html, Path.Combine(dir.Path, "profile"));
        int start = dom.IndexOf("<pre id=\"result\">", StringComparison.Ordinal);
        Assert.True(start >= 0, "the measuring script did not run: " + dom[..Math.Min(400, dom.Length)]);
        start += "<pre id=\"result\">".Length;
        string json = WebUtility.HtmlDecode(dom[start..dom.IndexOf("</pre>", start, StringComparison.Ordinal)]);
        using var doc = JsonDocument.Parse(json);
        return ([.. doc.RootElement.GetProperty("overlaps").EnumerateArray().Select(e => e.GetString()!)],
            [.. doc.RootElement.GetProperty("cut").EnumerateArray().Select(e => e.GetString()!)],
            doc.RootElement.GetProperty("texts").GetInt32());
    }

    public static TheoryData<string> Machines() => ["seeds-vm", "default", "arm64"];

    [Theory]
    [MemberData(nameof(Machines))]
    public void LayoutLabelsNeitherOverlapNorGetCut(string machine)
    {
        var config = machine switch
        {
            "seeds-vm" => SeedMachines.Vm(DevicePrivateDesign.DeviceAddressSpace),
            "arm64" => new MachineConfig { Architecture = Architecture.Arm64, PhysicalAddressBits = 48 },
            _ => new MachineConfig(),
        };
        var layouts = Enum.GetValues<DevicePrivateDesign>().Select(d => MachineLayout.Capture(config with { DevicePrivateDesign = d })).ToList();
        var (overlaps, cut, texts) = Render(LayoutSvg.Render(layouts, xmlDeclaration: false));
        Assert.True(texts > 20, $"only {texts} text elements measured");
        Assert.True(overlaps.Count == 0, "overlapping labels: " + string.Join("; ", overlaps));
        Assert.True(cut.Count == 0, "labels cut by the edge: " + string.Join("; ", cut));
    }

    [Fact]
    public void ChartSaysWhenASeriesIsAllZeroAndItsLabelsDoNotOverlap()
    {
        string svg = BarChart.Render("Pages migrated", "pages", ["to device", "to RAM"], ["PhysicalAddressSpace", "DeviceAddressSpace"], [[0, 1024], [0, 512]]);
        Assert.Contains("PhysicalAddressSpace (every value 0)", svg, StringComparison.Ordinal);
        var (overlaps, cut, _) = Render(svg);
        Assert.Empty(overlaps);
        Assert.Empty(cut);
    }
}
