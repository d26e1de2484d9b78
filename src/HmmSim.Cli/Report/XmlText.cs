using System.Globalization;
using System.Text;

namespace HmmSim.Cli.Report;

/// <summary>Escaping and number formatting shared by the SVG and HTML writers.</summary>
internal static class XmlText
{
    /// <summary>Escapes text for XML/HTML element content and attribute values.</summary>
    public static string Escape(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return "";
        var sb = new StringBuilder(text.Length + 16);
        foreach (char c in text)
        {
            switch (c)
            {
                case '&': sb.Append("&amp;"); break;
                case '<': sb.Append("&lt;"); break;
                case '>': sb.Append("&gt;"); break;
                case '"': sb.Append("&quot;"); break;
                case '\'': sb.Append("&#39;"); break;
                default:
                    // Control characters other than tab and newline are not allowed in XML 1.0.
                    if (c < ' ' && c != '\t' && c != '\n' && c != '\r')
                        sb.Append('?');
                    else
                        sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>A coordinate, invariant culture, at most one decimal.</summary>
    public static string N(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
}
