// Uses the installed library through its umbrella header.
#include <asynchttp/httpcore.hpp>

#include <iostream>

int main() {
  std::cout << asynchttp::Http404 << '\n';
  return 0;
}
