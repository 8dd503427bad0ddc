// StopStringFilter: finds stop strings in streamed text and holds back text that may be the start
// of one, so a client never sees any part of a stop string.
#pragma once

#include <string>
#include <vector>

namespace leoam::server {

class StopStringFilter {
 public:
  explicit StopStringFilter(std::vector<std::string> stops);

  // Appends `text`; returns the text that is now safe to send. After a match, returns the text
  // before the stop string and stopped() is true; later calls return "".
  std::string Push(const std::string& text);
  // The text still held back (at the end of generation, when no stop string matched).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace leoam::server
