using HmmSim.Cli.Scenarios;

namespace HmmSim.Cli.Tests;

public class NumberExpressionTests
{
    [Theory]
    [InlineData("4096", null, 4096L)]
    [InlineData("0x1000", null, 4096L)]
    [InlineData("8GiB", null, 8L << 30)]
    [InlineData("2^43-8GiB", null, (1L << 43) - (8L << 30))]
    [InlineData("7*4096", null, 7L * 4096)]
    [InlineData("2MiB/4", null, 524288L)]
    [InlineData("buf", "buf", 0L)]
    [InlineData("buf+0x1000", "buf", 4096L)]
    [InlineData("buf + 5*4KiB", "buf", 5L * 4096)]
    [InlineData("(buf+8)-4", "buf", 4L)]
    public void Evaluates(string text, string? name, long value)
    {
        Assert.Null(new NumberExpression(text).Parse(out var n, out var v));
        Assert.Equal(name, n);
        Assert.Equal((Int128)value, v);
    }

    [Theory]
    [InlineData("8 GB", "unknown size suffix")]
    [InlineData("0x", "without hex digits")]
    [InlineData("buf*2", "added once")]
    [InlineData("a+b", "two names")]
    [InlineData("4/0", "division by zero")]
    [InlineData("", "empty")]
    public void Rejects(string text, string problem) =>
        Assert.Contains(problem, new NumberExpression(text).Parse(out _, out _), StringComparison.Ordinal);
}
