using System.Globalization;
using Spectre.Console;

namespace HmmSim.Cli;

/// <summary>What the output is written to, decided once for every verb: colour and escape codes only
/// on a terminal and never when NO_COLOR is set (https://no-color.org); the width from COLUMNS, else
/// the terminal's, else 120 columns.</summary>
internal static class Terminal
{
    public const int DefaultWidth = 120;

    /// <summary>Whether <paramref name="output"/> is a terminal a person watches.</summary>
    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, System.Console.Out) && !System.Console.IsOutputRedirected;

    /// <summary>NO_COLOR set to anything non-empty turns colour and styles off.</summary>
    public static bool NoColor => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));

    public static bool Ansi(TextWriter output) => IsTerminal(output) && !NoColor;

    /// <summary>COLUMNS when it is a sensible number, else the terminal's width, else 120.</summary>
    public static int Width(TextWriter output)
    {
        if (int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), NumberStyles.None, CultureInfo.InvariantCulture, out int columns) && columns is >= 20 and <= 1000)
            return columns;
        if (IsTerminal(output))
        {
            try
            {
                if (System.Console.WindowWidth is >= 20 and var w)
                    return w;
            }
            catch (IOException)
            {
                // No terminal behind stdout after all.
            }
        }
        return DefaultWidth;
    }

    /// <summary>The console to draw tables on: colour and escape codes only when <see cref="Ansi"/>.</summary>
    public static IAnsiConsole Console(TextWriter output)
    {
        bool ansi = Ansi(output);
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = ansi ? AnsiSupport.Yes : AnsiSupport.No,
            ColorSystem = ansi ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = IsTerminal(output) ? InteractionSupport.Yes : InteractionSupport.No,
        });
        console.Profile.Width = Width(output);
        return console;
    }

    /// <summary>The row-label column of a per-design table: on a narrow terminal it takes a quarter of
    /// the width, so the design columns keep room for their longest word (no word cut in a header).</summary>
    public static TableColumn LabelColumn(TextWriter output)
    {
        int width = Width(output);
        return new TableColumn("") { Width = width < 100 ? Math.Max(12, width / 4) : null };
    }

    /// <summary>A table column whose cells wrap between words, never inside one.</summary>
    public static TableColumn Column(string header, bool right = false)
    {
        var c = new TableColumn(Markup.Escape(header)) { NoWrap = false };
        return right ? c.RightAligned() : c;
    }
}
