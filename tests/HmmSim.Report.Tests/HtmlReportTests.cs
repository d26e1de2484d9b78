using HmmSim.Cli.Report;
using HmmSim.Cli.Workloads;

namespace HmmSim.Report.Tests;

public sealed class HtmlReportTests
{
    [Fact]
    public void AllTextIsEscaped()
    {
        var html = new HtmlReport("<script>alert('t')</script> & co")
            .Paragraph("a < b & \"c\"")
            .Table(["<th>"], [["<td>&"]])
            .Figure(BarChart.Render("<chart>", "u&", ["<cat>"], ["<series>"], [[1.0]]), "<caption>")
            .ToHtml();
        Assert.DoesNotContain("<script>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<cat>", html, StringComparison.Ordinal);
        Assert.DoesNotContain("<caption>", html, StringComparison.Ordinal);
        Assert.Contains("&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt; &amp; co", html, StringComparison.Ordinal);
        Assert.Contains("a &lt; b &amp; &quot;c&quot;", html, StringComparison.Ordinal);
        Assert.Contains("&lt;td&gt;&amp;", html, StringComparison.Ordinal);
    }

    [Fact]
    public void BenchReportsHaveATableAndAChart()
    {
        var mm = HtmlReport.ForMm([new MmWorkloads.Figure("4 KiB faults", 1234.5, "faults/s"), new MmWorkloads.Figure("THP faults", 99, "faults/s")], 64).ToHtml();
        var fault = HtmlReport.ForFault(DevicePrivateDesign.DeviceAddressSpace, 64, 1e6, 5e6).ToHtml();
        var migrate = HtmlReport.ForMigrate(DevicePrivateDesign.PhysicalAddressSpace, 10, [new HmmWorkloads.MigrationRow(2UL << 20, true, 1, 2)]).ToHtml();
        foreach (var html in new[] { mm, fault, migrate })
        {
            Assert.Contains("<table>", html, StringComparison.Ordinal);
            Assert.Contains("class=\"chart\"", html, StringComparison.Ordinal);
            Assert.Contains("data-space=\"device-private\"", html, StringComparison.Ordinal);
            Assert.DoesNotContain("https://", html, StringComparison.Ordinal);
        }
        Assert.Contains("4 KiB faults", mm, StringComparison.Ordinal);
        Assert.Contains("1,000,000", fault, StringComparison.Ordinal);
        Assert.Contains("2 MiB THP", migrate, StringComparison.Ordinal);
    }
}
